"""The package's shape, read from its imports with ``ast``: no cycles (imports inside functions
count; ``if TYPE_CHECKING:`` blocks, which never run, do not), and none of the arrows STYLE.md forbids.

Importing ``a.b.c`` also imports the packages ``a`` and ``a.b``; those implicit arrows are left out,
as every cycle checker does. An explicit ``from .. import name`` is an arrow to the package."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "emulator"
PROVIDERS = ("alibaba", "tencent")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _imports_of(child))
            continue
        yield from _imports_of(node)


def _imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node):
        return
    yield from _imports(node)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in MODULES:
                yield alias.name
        return
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    if node.level:
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        if sub in MODULES:
            yield sub
        elif source in MODULES:
            yield source


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges[module] = {t for node in _imports(tree) for t in _targets(module, node) if t != module}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read() -> None:
    edges = graph()
    # A few arrows known to exist, so an empty graph cannot pass the tests below.
    assert "emulator.core.gateway" in edges["emulator.app"]
    assert "emulator.providers.alibaba.protocol" in edges["emulator.providers.alibaba.routes"]
    assert "emulator.core.call" in edges["emulator.core.gateway"]


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _forbidden(source: str, target: str) -> str | None:
    s, t = source.split("."), target.split(".")
    if s[1:2] == ["core"] and t[1:2] in (["providers"], ["admin"], ["app"], ["keys"]):
        return "core/ is provider-neutral and below the app"
    if s[1:2] == ["providers"] and t[1:2] == ["admin"]:
        return "providers never reach into the admin API"
    if s[1:2] == ["providers"] and t[1:2] == ["providers"] and len(s) > 2 and len(t) > 2 and s[2] != t[2]:
        return "one provider never imports the other"
    return None


def test_no_forbidden_arrows() -> None:
    bad = [
        f"{source} -> {target}: {why}"
        for source, targets in graph().items()
        for target in sorted(targets)
        if (why := _forbidden(source, target)) is not None
    ]
    assert bad == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.endswith((".models", ".handlers"))))
def test_models_and_handlers_import_no_aiohttp(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = {
        alias.name if isinstance(node, ast.Import) else (node.module or "")
        for node in _imports(tree)
        for alias in node.names
    }
    assert not {n for n in names if n.split(".")[0] in ("aiohttp", "multidict", "yarl")}


def test_core_names_no_provider() -> None:
    for module, path in MODULES.items():
        if module.startswith("emulator.core."):
            text = path.read_text(encoding="utf-8").lower()
            assert not [p for p in PROVIDERS if p in text], module
