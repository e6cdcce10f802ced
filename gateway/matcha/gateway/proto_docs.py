"""The comments of the protos, which generated Python modules do not keep, for OpenAPI descriptions.

`python -m matcha.gateway.proto_docs` compiles protos/ with source info and writes the comments,
by full name, to `proto_docs.json` beside this module. The file ships in the package, so an
installed gateway describes its routes without the proto sources; `--check` fails when it is stale.
"""

import argparse
import json
import sys
import tempfile
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

SHIPPED_NAME = "proto_docs.json"

# Field numbers of FileDescriptorProto, DescriptorProto, EnumDescriptorProto and ServiceDescriptorProto.
_FILE_MESSAGES, _FILE_ENUMS, _FILE_SERVICES = 4, 5, 6
_MESSAGE_FIELDS, _MESSAGE_NESTED, _MESSAGE_ENUMS = 2, 3, 4
_ENUM_VALUES = 2
_SERVICE_METHODS = 2


class ProtoComments:
    """Leading comments by full name: `pkg.Message`, `pkg.Message.field`, `pkg.Service.Method`, `pkg.Enum.VALUE`."""

    def __init__(self, by_name: dict[str, str]) -> None:
        self._by_name = by_name

    def of(self, full_name: str) -> str:
        return self._by_name.get(full_name, "")

    @classmethod
    def from_descriptor_set(cls, descriptor_set: descriptor_pb2.FileDescriptorSet) -> "ProtoComments":
        by_name: dict[str, str] = {}
        for file in descriptor_set.file:
            comments = {
                tuple(location.path): " ".join(location.leading_comments.split())
                for location in file.source_code_info.location
                if location.leading_comments.strip()
            }

            def note(path: tuple[int, ...], name: str, comments=comments) -> None:
                if path in comments:
                    by_name[name] = comments[path]

            def enum(path: tuple[int, ...], proto: descriptor_pb2.EnumDescriptorProto, name: str, note=note) -> None:
                note(path, name)
                for index, value in enumerate(proto.value):
                    note((*path, _ENUM_VALUES, index), f"{name}.{value.name}")

            def message(path: tuple[int, ...], proto: descriptor_pb2.DescriptorProto, name: str, note=note) -> None:
                note(path, name)
                for index, field in enumerate(proto.field):
                    note((*path, _MESSAGE_FIELDS, index), f"{name}.{field.name}")
                for index, nested in enumerate(proto.nested_type):
                    message((*path, _MESSAGE_NESTED, index), nested, f"{name}.{nested.name}")
                for index, nested_enum in enumerate(proto.enum_type):
                    enum((*path, _MESSAGE_ENUMS, index), nested_enum, f"{name}.{nested_enum.name}")

            for index, proto in enumerate(file.message_type):
                message((_FILE_MESSAGES, index), proto, f"{file.package}.{proto.name}")
            for index, enum_proto in enumerate(file.enum_type):
                enum((_FILE_ENUMS, index), enum_proto, f"{file.package}.{enum_proto.name}")
            for index, service in enumerate(file.service):
                note((_FILE_SERVICES, index), f"{file.package}.{service.name}")
                for method_index, method in enumerate(service.method):
                    method_path = (_FILE_SERVICES, index, _SERVICE_METHODS, method_index)
                    note(method_path, f"{file.package}.{service.name}.{method.name}")
        return cls(by_name)

    @classmethod
    def shipped(cls) -> "ProtoComments":
        return cls(json.loads((resources.files("matcha.gateway") / SHIPPED_NAME).read_text()))

    def to_json(self) -> str:
        return json.dumps(self._by_name, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def comments_of_protos() -> ProtoComments:
    """Compiles protos/ with source info. Development only: needs grpcio-tools and the proto sources."""
    from matcha.tools.protogen import run_protoc

    with tempfile.TemporaryDirectory() as scratch:
        image = Path(scratch) / "protos.binpb"
        run_protoc("--include_source_info", f"--descriptor_set_out={image}")
        return ProtoComments.from_descriptor_set(descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the shipped comments are stale")
    args = parser.parse_args()
    shipped = Path(__file__).with_name(SHIPPED_NAME)
    fresh = comments_of_protos().to_json()
    if not args.check:
        shipped.write_text(fresh)
        return 0
    if not shipped.exists() or shipped.read_text() != fresh:
        print(f"{shipped.name} is stale: run `python -m matcha.gateway.proto_docs` and commit the result")
        return 1
    print(f"{shipped.name} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
