"""Generates Python code, .pyi stubs and descriptor images from protos/.

`-I protos` makes generated imports absolute (`from matcha.common.v1 import ...`),
so the output drops straight into the `matcha` package tree with no rewriting.
"""

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

import google.api
import grpc_tools
from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[3]
PROTO_ROOT = REPO_ROOT / "protos"
# Well-known types ship with grpc_tools; google/api and google/rpc with googleapis-common-protos.
INCLUDES = [
    PROTO_ROOT,
    Path(grpc_tools.__file__).parent / "_proto",
    Path(google.api.__path__[0]).parents[1],
]
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def run_protoc(*args: str) -> None:
    includes = [f"-I{path}" for path in INCLUDES]
    files = [str(path.relative_to(PROTO_ROOT)) for path in proto_files()]
    code = protoc.main(["protoc", *includes, *args, *files])
    if code != 0:
        sys.exit(f"protoc failed with exit code {code}")


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    run_protoc(f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}")
    # Each generated v1 directory is a regular package so tools and type checkers find it.
    for proto in proto_files():
        package_dir = out / proto.relative_to(PROTO_ROOT).parent
        (package_dir / "__init__.py").touch()


def generated_files(root: Path) -> set[Path]:
    return {
        path.relative_to(root)
        for path in root.rglob("*")
        if path.name.endswith(GENERATED_SUFFIXES) and "v1" in path.parts
    }


def check(out: Path) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch)
        generate(fresh)
        expected, committed = generated_files(fresh), generated_files(out)
        stale = sorted(
            str(p) for p in expected if p not in committed or not filecmp.cmp(fresh / p, out / p, shallow=False)
        )
        extra = sorted(str(p) for p in committed - expected)
    for path in stale:
        print(f"stale or missing: {path}")
    for path in extra:
        print(f"generated file without a proto: {path}")
    if stale or extra:
        print("run `make proto` and commit the result")
        return 1
    print(f"generated code is current ({len(expected)} files)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "services")
    parser.add_argument("--check", action="store_true", help="fail when committed generated code is stale")
    parser.add_argument("--image", type=Path, help="write a descriptor image (for buf lint) instead")
    args = parser.parse_args()
    if args.image:
        args.image.parent.mkdir(parents=True, exist_ok=True)
        run_protoc("--include_imports", "--include_source_info", f"--descriptor_set_out={args.image}")
        return 0
    if args.check:
        return check(args.out)
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
