"""The shape of the code (ARCHITECTURE.md): imports point down a declared layer order, no
package imports one of its own layer or above, no import loops, no source file over 400 lines.

Imports are read with ``ast`` from every module of ``src/perpbot`` (top-level imports and those
inside functions alike); an import of ``perpbot.X`` from a module of package ``Y`` is an edge
Y -> X (a top-level module such as ``perpbot.config`` counts as its own package)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "perpbot"

#: Bottom to top; a package may import packages of lower layers only.
LAYERS: list[set[str]] = [
    {"types", "masking", "extras"},
    {"config_sources", "config_derived", "config_values", "config_portfolio", "config_risk"},
    {"config", "logs"},
    {"storage"},
    {"data"},
    {"features"},
    {"intel"},
    {"ml"},
    {"strategy"},
    {"risk"},
    {"sim"},
    {"exchange"},
    {"backtest"},
    {"optimize"},
    {"bot"},
    {"platform"},
    {"notify"},
    {"app"},
    {"api"},
    {"cli"},
    {"devtools"},
    {"__main__", "__init__"},
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
MAX_LINES = 400


def _package(parts: tuple[str, ...]) -> str:
    return parts[1] if len(parts) > 1 else "perpbot"


def import_edges() -> dict[tuple[str, str], list[str]]:
    """{(importing package, imported package): [module:line, ...]} over src/perpbot."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC.parent).with_suffix("").parts
        me = _package(rel)
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), str(f))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom) and node.level:
                base = list(rel[: -node.level])
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                continue
            for name in names:
                parts = tuple(name.split("."))
                if parts[0] == "perpbot" and len(parts) > 1 and _package(parts) != me:
                    edges[(me, _package(parts))].append(f"{'/'.join(rel)}.py:{node.lineno}")
    return edges


def test_every_package_has_a_declared_layer():
    packages = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
                if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert packages - set(RANK) == set(), "declare the new package's layer here and in ARCHITECTURE.md"


def test_imports_only_point_down_the_layers():
    back = {f"{a} -> {b}": where[:3] for (a, b), where in import_edges().items()
            if a in RANK and b in RANK and RANK[b] >= RANK[a]}
    assert back == {}


def test_no_package_import_loops():
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in import_edges():
        graph[a].add(b)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            v = todo.pop()
            for w in graph[v]:
                if w == goal:
                    return True
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return False

    loops = sorted(f"{a} <-> {b}" for a, b in import_edges() if reaches(b, a))
    assert loops == []


def test_the_checker_sees_a_back_import(tmp_path):
    """The edge reader finds imports inside functions and relative ones (so the tests above can fail)."""
    pkg = tmp_path / "perpbot"
    (pkg / "data").mkdir(parents=True)
    (pkg / "bot").mkdir()
    (pkg / "data" / "x.py").write_text("def f():\n    from ..bot import y\n")
    (pkg / "bot" / "y.py").write_text("import perpbot.data.x\n")
    globals()["SRC"], old = pkg, SRC
    try:
        edges = import_edges()
    finally:
        globals()["SRC"] = old
    assert set(edges) == {("data", "bot"), ("bot", "data")}
    assert edges[("data", "bot")] == ["perpbot/data/x.py:2"]


def test_no_source_file_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in sorted(SRC.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, "split these files by job"


def test_architecture_md_names_every_package():
    text = (SRC.parents[1] / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = sorted(p for p in RANK if p not in ("__init__",) and f"`{p}`" not in text)
    assert missing == []
