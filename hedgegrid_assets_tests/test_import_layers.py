"""The package's modules import each other along the data flow, with no cycle.

Every `import` counts, also the ones inside functions (imported late to keep start-up fast):
a cycle through a late import is still a cycle a reader has to untangle. `from pkg import mod`
is an import of `pkg.mod`. Layers, lowest first; a module may import its own layer and the
ones below it, never one above:

    foundation   names, faults, errors, storage, debris, settings, instruments, progress, batching
    frames       one module per data kind (schema, Nautilus class, Arrow conversion), partitions
    landing      downloads, decompression, the raw zone, source config files
    formats      vendor formats -> frames (binance/, tardis/, csv/)
    sources      one module per source a user names
    checks       validation of frames, completeness of a partition in the catalog
    catalog      the Nautilus catalog: writer, journal, provenance, completeness, status, verify,
                 object store; the partition locks its commits and repairs respect
    reports      pictures for people
    graph        the Dagster assets, definitions, automation, object zones, the build's runs,
                 the local instance class
    backtest     the hedge-grid backtest over a catalog
    cli          the `hedgegrid` command, on top
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hedgegrid_assets"

LAYERS = [
    {"names", "faults", "errors", "storage", "debris", "settings", "instruments", "progress", "batching"},
    {"frames", "partitions"},
    {"landing"},
    {"formats"},
    {"sources"},
    {"checks"},
    {"catalog", "locks"},
    {"reports"},
    {"assets", "definitions", "automation", "object_zones", "build_runs", "instance_storage", "local_instance"},
    {"backtest"},
    {"cli"},
]
# Known imports against the flow, each with its reason; keep this list short (empty today).
ALLOWED_UPWARD: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for a in node.names:
                    targets.append(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")[1:]
    if not parts:
        return None  # the package itself: builds `defs` on first access
    for depth in (2, 1):
        key = ".".join(parts[:depth])
        for i, layer in enumerate(LAYERS):
            if key in layer:
                return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")


def test_no_import_cycles():
    graph = _imports(_modules())
    assert len(graph) > 80  # the walk found the package
    assert _cycles(graph) == []


def test_a_cycle_is_found():
    """The detector itself: a late import closing a loop is a cycle."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_imports_follow_the_layers():
    upward = []
    for module, targets in _imports(_modules()).items():
        for target in targets:
            low, high = _layer(module), _layer(target)
            if low is None or high is None or high <= low:
                continue
            pair = (module.removeprefix("hedgegrid_assets."), target.removeprefix("hedgegrid_assets."))
            if pair not in ALLOWED_UPWARD:
                upward.append(f"{pair[0]} -> {pair[1]}")
    assert sorted(upward) == []
