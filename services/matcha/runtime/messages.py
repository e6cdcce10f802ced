"""Protobuf forms of runtime values that every servicer sends (cores never see them)."""

from matcha.common.v1 import common_pb2
from matcha.runtime.governance import DataClass

_DATA_CLASSES = {
    DataClass.PUBLIC: common_pb2.DATA_CLASS_PUBLIC,
    DataClass.INTERNAL: common_pb2.DATA_CLASS_INTERNAL,
    DataClass.CONFIDENTIAL: common_pb2.DATA_CLASS_CONFIDENTIAL,
    DataClass.PERSONAL: common_pb2.DATA_CLASS_PERSONAL,
}


def data_class_message(data_class: DataClass) -> common_pb2.DataClass:
    return _DATA_CLASSES[data_class]
