"""The package layout: sub-packages by stage, dependencies pointing one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
# Each stage may import from the stages before it, never from one after it. The modules at the
# top level (errors, settings, atomic, tf_import) are leaves every stage may use.
STAGES = ("video", "faces", "models", "scan", "report", "training", "web", "cli")
LEAVES = {"errors", "settings", "atomic", "tf_import"}


def imported_modules(path: Path) -> set[str]:
    """Every ``pipeline.*`` module a file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipeline"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            if node.module == "pipeline":
                found.update(f"pipeline.{a.name}" for a in node.names)
            else:
                found.add(node.module)
    return found


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


@pytest.mark.parametrize("stage", STAGES)
def test_dependencies_point_one_way(stage):
    allowed = set(STAGES[: STAGES.index(stage) + 1])
    wrong = []
    for path in sorted((PACKAGE / stage).rglob("*.py")):
        for module in imported_modules(path):
            other = stage_of(module)
            if other is not None and other not in allowed:
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert not wrong, "imports against the stage order " + " < ".join(STAGES) + ":\n" + "\n".join(wrong)


def test_top_level_holds_only_the_leaves_and_the_entry_points():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == LEAVES | {"__init__", "__main__"}
    for leaf in LEAVES:
        assert not {m for m in imported_modules(PACKAGE / f"{leaf}.py") if stage_of(m)}, leaf


def test_every_stage_is_a_documented_package():
    for stage in STAGES:
        init = PACKAGE / stage / "__init__.py"
        assert init.is_file(), stage
        assert ast.get_docstring(ast.parse(init.read_text())), f"{stage}/__init__.py has no docstring"


# --- no import cycles between modules ------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    """``pipeline/scan/engines/base.py`` -> ``pipeline.scan.engines.base``; a package's
    ``__init__.py`` is the package."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Every module under ``root`` -> the modules under ``root`` it imports, at module level or
    inside functions (any ``import`` statement anywhere in its file, ``TYPE_CHECKING`` blocks
    too). ``from a.b import c`` is an edge to ``a.b``, and to ``a.b.c`` too when that is a module;
    relative imports are resolved against the importing module's package."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets.add(base)
                targets.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for component in components:  # the shortest way from the component's first module back to it
        start, inside = component[0], set(component)
        paths = {start: [start]}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph[v] & inside):
                if w == start:
                    cycles.append([*paths[v], start])
                    queue = []
                    break
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    queue.append(w)
    return cycles


def test_no_import_cycles_between_modules():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles (imports inside functions count too):\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (package / "c.py").write_text("def g():\n    import pkg.a\n")
    (package / "d.py").write_text("import pkg.a\n")
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.c"}
    assert import_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
