"""The protobuf form of `matcha.runtime.data_map.SubjectHolding`, for servicers (cores never see it)."""

from matcha.common.v1 import common_pb2
from matcha.runtime.data_map import SubjectHolding
from matcha.runtime.messages import data_class_message


def holding_message(holding: SubjectHolding) -> common_pb2.SubjectHolding:
    message = common_pb2.SubjectHolding(
        kind=holding.kind,
        scope=holding.scope,
        count=holding.count,
        highest_data_class=data_class_message(holding.highest_data_class),
        purposes=holding.purposes,
        consented_channels=holding.consented_channels,
        truncated=holding.truncated,
        withheld=holding.withheld,
    )
    if holding.retention is not None:
        message.retention.FromTimedelta(holding.retention)
    for record in holding.records:
        message.records.add().update(record)
    return message


def holding_messages(holdings: list[SubjectHolding]) -> list[common_pb2.SubjectHolding]:
    return [holding_message(holding) for holding in holdings]
