"""The package's layering (README's Layout table): a module imports only modules of its own layer or below, and
the table lists exactly the packages and modules that are there."""

import ast
import re

from conftest import REPO

PACKAGE = REPO / "espnet2_slap"
# low to high; the README's Layout table lists them in this order, with their layer
LAYERS = [
    {"offline", "utils", "queue"},
    {"audio", "corpora"},
    {"layers", "losses", "metrics"},
    {"encoders"},
    {"models"},
    {"train", "tasks"},
    {"inference"},
    {"evaluation"},
    {"bin"},
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """``espnet2_slap.evaluation.readers`` -> ``evaluation``."""
    return module.split(".")[1]


def imports(path):
    """The espnet2_slap modules a file imports (at any depth of its code)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("espnet2_slap."):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("espnet2_slap."))
        if isinstance(node, ast.ImportFrom) and node.module == "espnet2_slap":
            yield from (f"espnet2_slap.{a.name}" for a in node.names)


def test_no_module_imports_one_of_a_higher_layer():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts == ("__init__.py",):
            continue
        part = rel.parts[0].removesuffix(".py")
        assert part in LAYER, f"{rel}: {part} has no layer in tests/test_layout.py (and the README's table)"
        for module in imports(path):
            if LAYER[part_of(module)] > LAYER[part] or (part == "bin" and part_of(module) == "bin"):
                upward.append(f"{rel} imports {module}")
    assert not upward, "\n".join(upward)


def test_the_readme_layout_table_matches_the_tree():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `espnet2_slap/([a-z_]+)(?:/|\.py)` \| (\d) \|", table, flags=re.M)
    assert listed, "no espnet2_slap rows with a layer column in the README's Layout table"
    there = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    there.discard("__init__")
    assert {name for name, _ in listed} == there
    assert {name: int(layer) for name, layer in listed} == {name: LAYER[name] for name in there}
