"""The library's layout keeps its promises: no import cycle (imports inside functions count too),
and the cores below the pipelines import neither the CLI, nor the book runner, nor `reports/`."""
from __future__ import annotations

import ast
from pathlib import Path

import m3el_lib

PACKAGE = Path(m3el_lib.__file__).parent
# Modules that load, compute and write (pipelines), present (reports) or drive (CLI, book):
# everything else is a core and must not reach up into them.
UPPER_LAYERS = ("m3el_lib.cli", "m3el_lib.__main__", "m3el_lib.book", "m3el_lib.reports")
PIPELINES = {
    "m3el_lib.data.datasets", "m3el_lib.statistics.pipeline", "m3el_lib.evaluation.pipeline",
    "m3el_lib.training.experiments", "m3el_lib.training.cli", "m3el_lib.training.__main__",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def exists(name: str) -> bool:
    return is_package(name) or (PACKAGE.parent / (name.replace(".", "/") + ".py")).is_file()


def imports_of(path: Path) -> set[str]:
    """Every m3el_lib module `path` imports, at any depth of its code."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("m3el_lib")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("m3el_lib"):
                continue
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names if exists(f"{target}.{alias.name}")}
    return {module for module in found if exists(module) and module != name}


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_library_modules():
    edges = {name: {m for m in deps if not is_package(m)} for name, deps in graph().items()}
    assert cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_cores_do_not_import_cli_book_or_reports():
    offenders = {}
    for name, deps in graph().items():
        if name.startswith(UPPER_LAYERS) or name in PIPELINES or name == "m3el_lib":
            continue
        upward = sorted(d for d in deps if d.startswith(UPPER_LAYERS))
        if upward:
            offenders[name] = upward
    assert offenders == {}


def test_every_subpackage_says_what_it_owns():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{init}: no docstring saying what the package owns"


def test_the_public_api_resolves():
    for name in m3el_lib.__all__:
        assert getattr(m3el_lib, name) is not None, name
