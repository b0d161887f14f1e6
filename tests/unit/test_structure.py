"""The layering the README describes, read from every module's imports: no service imports
another (they talk only through events), and shared code imports no service."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())


def imported_modules(path: Path) -> Iterator[str]:
    """Every module a file imports, at any depth (also inside functions)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def violations(folder: Path, forbidden: Callable[[str], bool]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in folder.rglob("*.py")
        for module in set(imported_modules(path))
        if forbidden(module)
    )


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_the_services_are_found() -> None:
    assert SERVICES == ["deadline", "intake", "notifier", "routing"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    others = [f"services.{name}" for name in SERVICES if name != service]
    found = violations(
        ROOT / "services" / service, lambda module: any(within(module, o) for o in others)
    )
    assert found == []


def test_shared_code_imports_no_service() -> None:
    assert violations(ROOT / "shared", lambda module: within(module, "services")) == []
