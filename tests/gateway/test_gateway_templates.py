"""Path templates and request binding, on a descriptor built here to exercise every annotation form."""

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from matcha.gateway.catalog import Catalog, MethodNotAllowed, Route, RouteNotFound, check_binding
from matcha.gateway.templates import TemplateError, parse_template
from matcha.gateway.transcoding import build_requests, render
from matcha.runtime.errors import InvalidArgument

F = descriptor_pb2.FieldDescriptorProto


def _field(name, number, kind, *, repeated=False, type_name=""):
    label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
    field = F(name=name, number=number, type=kind, label=label, json_name=_camel(name))
    if type_name:
        field.type_name = type_name
    return field


def _camel(name):
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _method(name, input_type, output_type, rule, *, client_streaming=False):
    options = descriptor_pb2.MethodOptions()
    options.Extensions[annotations_pb2.http].CopyFrom(rule)
    return descriptor_pb2.MethodDescriptorProto(
        name=name,
        input_type=input_type,
        output_type=output_type,
        options=options,
        client_streaming=client_streaming,
    )


@pytest.fixture(scope="module")
def library():
    """A `gatewaytest.v1.Library` service with nested path fields, a named body, verbs and a client stream."""
    pool = descriptor_pool.Default()
    name = "gatewaytest/v1/library.proto"
    try:
        return pool.FindFileByName(name)
    except KeyError:
        pass
    file = descriptor_pb2.FileDescriptorProto(
        name=name,
        package="gatewaytest.v1",
        syntax="proto3",
        dependency=["google/api/annotations.proto", "google/protobuf/timestamp.proto"],
    )
    file.enum_type.add(name="Genre").value.extend(
        [
            descriptor_pb2.EnumValueDescriptorProto(name="GENRE_UNSPECIFIED", number=0),
            descriptor_pb2.EnumValueDescriptorProto(name="GENRE_POETRY", number=1),
        ]
    )
    file.message_type.add(name="Shelf", field=[_field("name", 1, F.TYPE_STRING)])
    file.message_type.add(
        name="Book",
        field=[
            _field("title", 1, F.TYPE_STRING),
            _field("pages", 2, F.TYPE_INT64),
            _field("genre", 3, F.TYPE_ENUM, type_name=".gatewaytest.v1.Genre"),
        ],
    )
    file.message_type.add(name="Range", field=[_field("max", 1, F.TYPE_INT32)])
    file.message_type.add(
        name="ListBooksRequest",
        field=[
            _field("parent", 1, F.TYPE_MESSAGE, type_name=".gatewaytest.v1.Shelf"),
            _field("genres", 2, F.TYPE_ENUM, repeated=True, type_name=".gatewaytest.v1.Genre"),
            _field("include_drafts", 3, F.TYPE_BOOL),
            _field("since", 4, F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp"),
            _field("pages", 5, F.TYPE_MESSAGE, type_name=".gatewaytest.v1.Range"),
            _field("ratio", 6, F.TYPE_DOUBLE),
        ],
    )
    file.message_type.add(
        name="ListBooksResponse",
        field=[_field("books", 1, F.TYPE_MESSAGE, repeated=True, type_name=".gatewaytest.v1.Book")],
    )
    file.message_type.add(
        name="PutBookRequest",
        field=[
            _field("shelf", 1, F.TYPE_STRING),
            _field("book_id", 2, F.TYPE_STRING),
            _field("book", 3, F.TYPE_MESSAGE, type_name=".gatewaytest.v1.Book"),
        ],
    )
    service = file.service.add(name="Library")
    service.method.extend(
        [
            _method(
                "ListBooks",
                ".gatewaytest.v1.ListBooksRequest",
                ".gatewaytest.v1.ListBooksResponse",
                http_pb2.HttpRule(get="/v1/{parent.name=shelves/*}/books"),
            ),
            _method(
                "PutBook",
                ".gatewaytest.v1.PutBookRequest",
                ".gatewaytest.v1.Book",
                http_pb2.HttpRule(
                    put="/v1/shelves/{shelf}/books/{book_id}",
                    body="book",
                    additional_bindings=[http_pb2.HttpRule(post="/v1/shelves/{shelf}/books/{book_id}:put", body="*")],
                ),
            ),
            _method(
                "CountBooks",
                ".gatewaytest.v1.ListBooksRequest",
                ".gatewaytest.v1.ListBooksResponse",
                http_pb2.HttpRule(post="/v1/books:count", body="*", response_body="books"),
                client_streaming=True,
            ),
        ]
    )
    pool.Add(file)
    return pool.FindFileByName(name)


def test_template_forms():
    template = parse_template("/v1/{name=shelves/*/books/*}:archive")
    assert template.variables == ("name",) and template.verb == "archive"
    assert template.match("/v1/shelves/s1/books/b2:archive") == {"name": "shelves/s1/books/b2"}
    assert template.match("/v1/shelves/s1/books/b2") is None
    assert template.openapi_path == "/v1/{name}:archive"
    assert parse_template("/v1/files/{path=**}").match("/v1/files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert parse_template("/v1/*/items").match("/v1/x/items") == {}
    for bad in ("v1/no-slash", "/v1/{bad name}", "/v1//double"):
        with pytest.raises(TemplateError):
            parse_template(bad)


def test_verb_routes_win_and_methods_are_told_apart(library):
    catalog = Catalog([library])
    route, bound = catalog.find("POST", "/v1/shelves/s1/books/b1:put")
    assert route.method.name == "PutBook" and route.body == "*" and bound == {"shelf": "s1", "book_id": "b1"}
    assert catalog.find("PUT", "/v1/shelves/s1/books/b1")[0].body == "book"
    with pytest.raises(MethodNotAllowed) as refusal:
        catalog.find("DELETE", "/v1/shelves/s1/books/b1")
    assert refusal.value.allowed == ["PUT"]
    with pytest.raises(RouteNotFound):
        catalog.find("GET", "/v2/anything")


def test_nested_path_field_and_typed_query_parameters(library):
    route, bound = Catalog([library]).find("GET", "/v1/shelves/poems/books")
    query = [
        ("genres", "GENRE_POETRY"),
        ("genres", "1"),
        ("includeDrafts", "true"),
        ("since", "2026-01-02T03:04:05Z"),
        ("pages.max", "300"),
        ("ratio", "0.5"),
    ]
    (request,) = build_requests(route, bound, query, b"")
    assert request.parent.name == "shelves/poems"
    assert list(request.genres) == [1, 1]
    assert request.include_drafts is True
    assert request.since.seconds == 1767323045
    assert request.pages.max == 300 and request.ratio == 0.5


def test_bad_query_parameters_name_their_field(library):
    route, bound = Catalog([library]).find("GET", "/v1/shelves/poems/books")
    cases = [
        ([("colour", "red")], "colour"),
        ([("includeDrafts", "maybe")], "includeDrafts"),
        ([("pages.max", "lots")], "pages.max"),
        ([("pages", "3")], "pages"),
        ([("ratio", "1"), ("ratio", "2")], "ratio"),
        ([("parent.name", "x")], "parent.name"),
    ]
    for query, field in cases:
        with pytest.raises(InvalidArgument) as refusal:
            build_requests(route, bound, query, b"")
        fields = [violation.field for violation in refusal.value.violations]
        assert fields == [field], query


def test_named_body_field_and_int64_from_string(library):
    route, bound = Catalog([library]).find("PUT", "/v1/shelves/s1/books/b1")
    (request,) = build_requests(route, bound, [], b'{"title": "Haiku", "pages": "64", "genre": "GENRE_POETRY"}')
    assert (request.shelf, request.book_id) == ("s1", "b1")
    assert (request.book.title, request.book.pages, request.book.genre) == ("Haiku", 64, 1)


def test_client_stream_takes_an_array_or_json_lines_and_response_body_selects_a_field(library):
    route, bound = Catalog([library]).find("POST", "/v1/books:count")
    as_array = build_requests(route, bound, [], b'[{"includeDrafts": true}, {"ratio": 2}]')
    as_lines = build_requests(route, bound, [], b'{"includeDrafts": true}\n\n{"ratio": 2}\n', json_lines=True)
    assert [message.SerializeToString() for message in as_array] == [m.SerializeToString() for m in as_lines]
    with pytest.raises(InvalidArgument) as refusal:
        build_requests(route, bound, [], b'[{"ratio": "x"}]')
    assert refusal.value.violations[0].field == "[0].ratio"

    response_class = message_factory.GetMessageClass(route.method.output_type)
    reply = response_class()
    reply.books.add(title="Haiku", pages=64)
    assert render(route, reply) == [{"title": "Haiku", "pages": "64", "genre": "GENRE_UNSPECIFIED"}]


def test_a_template_binding_a_message_or_unknown_field_is_refused_at_start(library):
    method = library.services_by_name["Library"].methods_by_name["ListBooks"]
    for template in ("/v1/{parent}/books", "/v1/{nothing}/books", "/v1/{genres}/books"):
        with pytest.raises(TemplateError):
            check_binding(Route("GET", parse_template(template), "", "", method))
