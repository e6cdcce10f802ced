"""What the listening tests share: posts that make topics (praise, complaints, a recall) and message builders."""

from datetime import datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2

from matcha.classification.v1 import classification_pb2 as pb

PRAISE = [
    "The parcel arrived a day early, great delivery service",
    "Delivery was quick and the parcel was perfectly packed",
    "Lovely courier, my parcel came right on time",
    "Fast delivery again, the parcel was in perfect shape",
    "Brilliant delivery, the parcel arrived before I expected",
    "Parcel delivered promptly, very happy with the delivery",
]
COMPLAINTS = [
    "My parcel never arrived, terrible delivery service",
    "Delivery was a week late and the parcel was damaged",
    "Awful courier, the parcel was left in the rain and ruined",
    "Still waiting for my parcel, worst delivery ever",
    "The delivery driver lost my parcel, furious",
    "Parcel crushed and late, the delivery was a disaster",
]
RECALL = [
    "Oat milk recall: cartons pulled from shelves after sour taste",
    "Supermarket recalls oat milk over contamination fears",
    "Oat milk maker apologises as the recall widens",
    "Shoppers asked to return recalled oat milk cartons",
    "Refunds offered on the recalled oat milk",
    "Cafes drop oat milk amid the carton recall",
]


def seconds(value: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(seconds=value))
    return message


def stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def posts(texts: list[str], moment: datetime, prefix: str, **fields) -> list[pb.WatchPost]:
    return [pb.WatchPost(id=f"{prefix}-{i}", text=text, time=stamp(moment), **fields) for i, text in enumerate(texts)]
