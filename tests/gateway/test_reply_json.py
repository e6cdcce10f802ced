"""Replies rendered as proto3 JSON: the bulk path for repeated floats writes what json_format writes."""

import math

import numpy as np
from google.protobuf import json_format

from matcha.embedding.v1 import embedding_pb2
from matcha.gateway.transcoding import shortest_float32_json, to_json_value
from matcha.segmentation.v1 import segmentation_pb2


def reference(message) -> object:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def test_float32_values_are_written_as_json_format_writes_them():
    generator = np.random.default_rng(7)
    values = np.concatenate(
        [
            generator.normal(0, 0.05, 20_000),  # embedding components
            generator.normal(0, 1e6, 500),
            generator.normal(0, 1e-6, 500),
            [0.0, -0.0, 1.0, 0.1, 1 / 3, 123456789.0, 3.4e38, -3.4e38, 1.2e-38],
        ]
    ).astype(np.float32)
    floats = [float(value) for value in values]
    expected = [json_format.MessageToDict(embedding_pb2.Embedding(values=[value]))["values"][0] for value in floats]
    converted = shortest_float32_json(floats)
    assert [repr(value) for value in converted] == [repr(value) for value in expected]


def test_non_finite_floats_are_strings():
    assert shortest_float32_json([math.nan, math.inf, -math.inf, 2.5]) == ["NaN", "Infinity", "-Infinity", 2.5]


def test_nested_float_arrays_match_json_format_and_the_message_is_left_intact():
    generator = np.random.default_rng(11)
    reply = embedding_pb2.EmbedResponse(
        embeddings=[embedding_pb2.Embedding(values=generator.normal(0, 0.1, 384).tolist()) for _ in range(3)],
        dimension=384,
    )
    reply.model.id = "all-MiniLM-L6-v2"
    before = reply.SerializeToString()
    assert to_json_value(reply) == reference(reply)
    assert reply.SerializeToString() == before


def test_messages_without_float_arrays_and_empty_arrays_are_unchanged():
    item = segmentation_pb2.Item(id="sku-1", name="Matcha whisk")
    assert to_json_value(item) == reference(item)
    assert to_json_value(
        segmentation_pb2.IngestItemsRequest(items=[item, segmentation_pb2.Item(id="sku-2", vector=[0.1, 0.7])])
    ) == (
        reference(
            segmentation_pb2.IngestItemsRequest(items=[item, segmentation_pb2.Item(id="sku-2", vector=[0.1, 0.7])])
        )
    )
    assert to_json_value(embedding_pb2.EmbedResponse()) == reference(embedding_pb2.EmbedResponse())
