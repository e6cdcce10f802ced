"""The runtime's layering, read from the source: services and the gateway use the runtime through its public
modules only, and the runtime imports no service (only itself and the shared generated messages)."""

import ast
from pathlib import Path

import matcha.runtime
from matcha.runtime import PUBLIC_MODULES

SERVICES = Path(matcha.runtime.__file__).parents[1]
GATEWAY = SERVICES.parents[1] / "gateway" / "matcha"
RUNTIME = SERVICES / "runtime"


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement of `path` names (`from matcha.runtime import pii` names the package's
    member `matcha.runtime.pii`)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "matcha.runtime":
                names += [f"matcha.runtime.{alias.name}" for alias in node.names if alias.name != "PUBLIC_MODULES"]
    return names


def sources(root: Path) -> list[Path]:
    return [path for path in root.rglob("*.py") if "/v1/" not in path.as_posix()]


def test_services_and_the_gateway_use_only_the_runtimes_public_modules():
    outside = [path for root in (SERVICES, GATEWAY) for path in sources(root) if RUNTIME not in path.parents]
    assert len(outside) > 100  # the whole tree was read
    private = {
        f"{path.relative_to(SERVICES.parent)}: {name}"
        for path in outside
        for name in imported_modules(path)
        if name.startswith("matcha.runtime.") and name.split(".")[2] not in PUBLIC_MODULES
    }
    assert private == set()


def test_the_runtime_imports_no_service():
    allowed = ("matcha.runtime", "matcha.common.v1")
    found = {
        f"{path.relative_to(SERVICES.parent)}: {name}"
        for path in sources(RUNTIME)
        for name in imported_modules(path)
        if name.startswith("matcha.") and not name.startswith(allowed)
    }
    assert found == set()


def test_the_public_modules_exist():
    present = {path.stem for path in RUNTIME.glob("*.py")} | {path.name for path in RUNTIME.iterdir() if path.is_dir()}
    assert present >= PUBLIC_MODULES
