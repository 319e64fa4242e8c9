"""The package layout: sub-packages by stage, dependencies pointing one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
# Each stage may import from the stages before it, never from one after it. The modules at the
# top level (errors, atomic, tf_import) are leaves every stage may use.
STAGES = ("video", "faces", "models", "scan", "training", "web", "cli")
LEAVES = {"errors", "atomic", "tf_import"}


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
