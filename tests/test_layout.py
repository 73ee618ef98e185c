"""The package's layering (README's Layout table): a module imports only modules of its own layer or below, no
module imports itself through others (no import cycle, of any length), no two packages of one layer import each
other, and the table lists exactly the packages and modules that are there.

What counts as an import of one of our modules (``names_in``), at any depth of a file's code (in functions too):

- ``import espnet2_slap.x.y``, ``from espnet2_slap.x import y`` and the relative forms (``from . import y``,
  ``from ..x import y``, ``from .y import z``), resolved to the absolute module: ``y`` when it is a module of the
  tree, else the package it is read from;
- a module named as a string to an import function (``importlib.import_module``, ``__import__``,
  ``importlib.util.find_spec``, ``runpy.run_module``; relative names with their ``package``), or as the argument
  after ``"-m"`` in a list or tuple (a subprocess's ``python -m espnet2_slap.bin.x``); a name only partly written
  out (``f"espnet2_slap.corpora.{name}"``) stands for every module it may name;
- in a file that gives an import function a name it computes (a lazy-import table), every string in its code that
  is exactly a dotted ``espnet2_slap...`` name (``"espnet2_slap.x.y"``, ``"espnet2_slap.x.y:attr"``).

Strings elsewhere are not imports: docstrings, log and error messages and usage lines name our modules (``python -m
espnet2_slap.bin.slap_embed ...`` in a message, ``start_logging("espnet2_slap.bin.x")``) without importing them,
and the code base has no table of lazily imported modules (grep: the only computed names are those of
``offline.py``, which names no module of ours); the last rule catches one if it comes, without flagging the
messages of the files that have none.

A deferred import (in a function) is still a dependency: the layering and the cycle checks count it. The
package's own ``__init__`` runs before any of its modules: it counts as of the lowest layer (all may import it, it
imports only modules of layer 0). Everything derives from LAYERS (low to high), the one list the README's table is
compared with; ``check_layout(root)`` runs the checks on the package at ``root`` (the tests of the checks run it on
a copy with an import injected).
"""

import ast
import re
import shutil
from collections import defaultdict, deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest
from conftest import REPO

PACKAGE = REPO / "espnet2_slap"
# low to high; the README's Layout table lists them in this order, with their layer
LAYERS = [
    {"offline", "prompts", "utils", "queue", "checkpoints"},
    {"audio", "corpora", "fetch"},
    {"layers", "losses", "metrics"},
    {"encoders"},
    {"models"},
    {"train", "tasks"},
    {"inference"},
    {"evaluation", "search"},
    {"bin"},
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}
# the package of the entry points: none of them imports another one
ENTRY_POINTS = "bin"
IMPORT_FUNCTIONS = {"import_module", "__import__", "find_spec", "run_module"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. espnet2_slap.train.trainer
    target: str  # the imported one (a module of the tree), or what was asked for when it is not there
    line: int
    how: str  # the code, for the messages
    found: bool = True
    prefix: Optional[str] = None  # a name only partly written out, which stands for every module it may name

    @property
    def named(self) -> str:
        return f"{self.prefix}*" if self.prefix else self.target


@dataclass
class Tree:
    root: Path
    files: Dict[str, Path]  # module name -> file
    imports: List[Import]

    def rel(self, module: str) -> str:
        return str(self.files[module].relative_to(self.root.parent))

    def where(self, imp: Import) -> str:
        return f"{self.rel(imp.source)}:{imp.line}"


def module_names(root: Path) -> Dict[str, Path]:
    """``root/models/slap.py`` -> ``espnet2_slap.models.slap``, ``root/models/__init__.py`` -> ``espnet2_slap.models``
    (the top package's name is the name of ``root``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def part_of(module: str) -> Optional[str]:
    """``espnet2_slap.evaluation.readers`` -> ``evaluation``; None for the package itself (its ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_of(module: str) -> Optional[int]:
    """The package's ``__init__`` runs before any of its modules: it is of the lowest layer, and any may import it."""
    part = part_of(module)
    return 0 if part is None else LAYER.get(part)


def string_prefix(node: ast.AST) -> Tuple[Optional[str], bool]:
    """A string expression's text and whether it is complete: ``"a.b"`` -> ("a.b", True), ``f"a.{x}"`` and
    ``"a." + x`` -> ("a.", False); (None, False) when it starts with no written text."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, True
    if isinstance(node, ast.JoinedStr):
        text = ""
        for value in node.values:
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                return text or None, False
            text += value.value
        return text, True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return string_prefix(node.left)[0], False
    return None, False


def call_argument(call: ast.Call, position: int, keyword: str) -> Optional[ast.AST]:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def docstring_nodes(tree: ast.Module) -> Set[int]:
    """The string statements (docstrings and bare strings) and the parts of f-strings: never names of imports."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, (ast.Constant, ast.JoinedStr)):
            ids.update(id(n) for n in ast.walk(node.value))
        elif isinstance(node, ast.JoinedStr):
            ids.update(id(n) for n in node.values)
    return ids


@dataclass(frozen=True)
class Named:
    """One place of a file that names modules: the first of ``candidates`` that is a module of the tree is the one
    imported (``from a import b``: ``a.b``, else ``a``); ``prefix``: every module whose name starts so."""

    candidates: Tuple[str, ...]
    line: int
    how: str
    prefix: bool = False


def relative(name: str, level: int, anchor: str) -> Optional[str]:
    """``relative("x", 2, "espnet2_slap.models")`` -> ``espnet2_slap.x``; None beyond the top package."""
    parts = anchor.split(".")
    if level > len(parts):
        return None
    return ".".join([*parts[: len(parts) - level + 1], *([name] if name else [])])


@lru_cache(maxsize=None)
def names_in(source: str, is_package: bool, text: str, top: str) -> Tuple[Named, ...]:
    """What the code of module ``source`` names (cached by its text: copies of the tree parse only what differs)."""
    package = source if is_package else source.rpartition(".")[0]
    tree = ast.parse(text)
    found, computed_names, handled = [], False, set()  # handled: the strings read as names of imports
    beyond = "{} (a relative import beyond the top package)"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Named((a.name,), node.lineno, f"import {a.name}") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            what = f"from {'.' * node.level}{node.module or ''} import {', '.join(a.name for a in node.names)}"
            base = relative(node.module or "", node.level, package) if node.level else node.module
            if base is None:
                found.append(Named((), node.lineno, beyond.format(what)))
                continue
            found += [Named((f"{base}.{a.name}", base), node.lineno, what) for a in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name not in IMPORT_FUNCTIONS or not node.args:
                continue
            what = ast.unparse(node)
            handled.add(id(node.args[0]))
            text_, complete = string_prefix(node.args[0])
            if text_ is None:
                computed_names = True
                continue
            level = len(text_) - len(text_.lstrip("."))
            if name == "__import__":
                level_arg = call_argument(node, 4, "level")
                level = level_arg.value if isinstance(level_arg, ast.Constant) else level
            if level:
                anchor = call_argument(node, 1, "package") if name != "__import__" else None
                if isinstance(anchor, ast.Constant) and isinstance(anchor.value, str):
                    anchor = anchor.value
                elif isinstance(anchor, ast.Name) and anchor.id == "__name__":
                    anchor = source
                else:  # __package__, globals() or nothing: this module's package
                    anchor = package
                text_ = relative(text_.lstrip("."), level, anchor)
                if text_ is None:
                    found.append(Named((), node.lineno, beyond.format(what)))
                    continue
            found.append(Named((text_,), node.lineno, what, prefix=not complete))
            fromlist = call_argument(node, 3, "fromlist") if name == "__import__" else None
            if complete and isinstance(fromlist, (ast.List, ast.Tuple)):
                for item in fromlist.elts:
                    if isinstance(item, ast.Constant) and isinstance(item.value, str):
                        found.append(Named((f"{text_}.{item.value}", text_), node.lineno, what))
        elif isinstance(node, (ast.List, ast.Tuple)):
            for flag, arg in zip(node.elts, node.elts[1:]):
                if isinstance(flag, ast.Constant) and flag.value == "-m":
                    text_, complete = string_prefix(arg)
                    handled.add(id(arg))
                    if text_ is not None:
                        found.append(Named((text_,), arg.lineno, f'"-m", {ast.unparse(arg)}', prefix=not complete))
    if computed_names:
        skip = docstring_nodes(tree) | handled
        pattern = re.compile(rf"{top}(\.\w+)+(:[\w.]+)?")
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if pattern.fullmatch(node.value):
                    # "espnet2_slap.x.y:attr" or "espnet2_slap.x.y.attr": module espnet2_slap.x.y
                    parts = node.value.partition(":")[0].split(".")
                    prefixes = tuple(".".join(parts[:n]) for n in range(len(parts), 1, -1))
                    found.append(Named(prefixes, node.lineno, repr(node.value)))
    ours = (top, f"{top}.")
    return tuple(n for n in found if not n.candidates or n.candidates[-1] == top or n.candidates[-1].startswith(ours))


def scan(root: Path) -> Tree:
    """Every import of one of our modules in the tree at ``root`` (the package, or a copy named as it)."""
    files = module_names(root)
    imports = set()
    for source, path in files.items():
        for named in names_in(source, path.name == "__init__.py", path.read_text(encoding="utf-8"), root.name):
            if named.prefix:
                targets = [m for m in files if m.startswith(named.candidates[0]) and m != source]
            else:
                targets = [m for m in named.candidates if m in files][:1]
            if not targets:
                imports.add(
                    Import(source, named.candidates[-1] if named.candidates else "", named.line, named.how, False)
                )
            prefix = named.candidates[0] if named.prefix else None
            imports.update(Import(source, target, named.line, named.how, prefix=prefix) for target in targets)
    return Tree(root, files, sorted(imports, key=lambda i: (i.source, i.line, i.target, i.how)))


def layering_problems(tree: Tree) -> List[str]:
    """Modules of no layer, imports of a higher layer, of another entry point, of modules that are not there."""
    problems = []
    for part in sorted({part_of(m) for m in tree.files} - {None} - set(LAYER)):
        problems.append(f"{tree.root.name}/{part}: no layer in tests/test_layout.py's LAYERS (and the README's table)")
    for imp in tree.imports:
        where = f"{tree.where(imp)}: {imp.how}"
        if not imp.found:
            problems.append(f"{where}: {imp.target or 'that'} is not a module of the tree")
            continue
        source_layer, target_layer = layer_of(imp.source), layer_of(imp.target)
        if source_layer is None or target_layer is None:
            continue  # reported above
        if target_layer > source_layer:
            problems.append(
                f"{where}: layer {source_layer} ({part_of(imp.source) or 'the package'}) imports {imp.named}, "
                f"of layer {target_layer} ({part_of(imp.target)})"
            )
        elif part_of(imp.source) == part_of(imp.target) == ENTRY_POINTS and imp.target != imp.source:
            problems.append(f"{where}: an entry point imports another one, {imp.named}")
    return list(dict.fromkeys(problems))  # a name partly written out: once for all the modules it may name


def strongly_connected(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Tarjan's components with a cycle (more than one node, or a node with an edge to itself)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:
        # iterative: a deep import chain must not reach Python's recursion limit
        work = [(node, iter(sorted(graph.get(node, ()))))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1 or current in graph.get(current, ()):
                    components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def shortest_cycle(graph: Dict[str, Set[str]], start: str, within: Set[str]) -> List[str]:
    """The shortest chain start -> ... -> start inside one component."""
    previous = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.get(node, ())):
            if child not in within:
                continue
            if child == start:
                chain = [node]
                while chain[-1] != start:
                    chain.append(previous[chain[-1]])
                return [*reversed(chain), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is on no cycle")


def cycles(graph: Dict[str, Set[str]]) -> List[Tuple[List[str], List[List[str]]]]:
    """Each component with a cycle: its members, and shortest cycles till each member is on one of them."""
    found = []
    for component in strongly_connected(graph):
        chains, covered = [], set()
        for member in component:
            if member not in covered:
                chains.append(shortest_cycle(graph, member, set(component)))
                covered.update(chains[-1])
        found.append((component, chains))
    return found


def module_cycle_problems(tree: Tree) -> List[str]:
    """Import cycles between modules, each as its chain with the line of each step."""
    graph, steps = defaultdict(set), defaultdict(list)
    for imp in tree.imports:
        if imp.found:
            graph[imp.source].add(imp.target)
            steps[imp.source, imp.target].append(imp)
    problems = []
    for component, chains in cycles(graph):
        for chain in chains:
            lines = [f"{tree.where(i)}: {i.how}" for a, b in zip(chain, chain[1:]) for i in steps[a, b]]
            problems.append("import cycle " + " -> ".join(chain) + "".join(f"\n    {line}" for line in lines))
    return problems


def package_cycle_problems(tree: Tree) -> List[str]:
    """Packages of one layer that import each other (through any number of them), with the imports of each way."""
    graph, steps = defaultdict(set), defaultdict(list)
    for imp in tree.imports:
        a, b = part_of(imp.source), part_of(imp.target)
        if imp.found and a and b and a != b and LAYER.get(a) is not None and LAYER.get(a) == LAYER.get(b):
            graph[a].add(b)
            steps[a, b].append(imp)
    problems = []
    for component, chains in cycles(graph):
        ways = sorted((a, b) for a in component for b in graph[a] if b in component)
        text = [
            f"packages of layer {LAYER[component[0]]} import each other: "
            + "; ".join(" -> ".join(chain) for chain in chains)
        ]
        for a, b in ways:
            text.append(f"  {a} -> {b}:")
            text += [f"    {tree.where(i)}: {i.how}" for i in steps[a, b]]
        problems.append("\n".join(text))
    return problems


def check_layout(root: Path) -> Dict[str, List[str]]:
    """All the problems of the package at ``root``, by check."""
    tree = scan(root)
    return {
        "layering": layering_problems(tree),
        "module cycles": module_cycle_problems(tree),
        "package cycles": package_cycle_problems(tree),
    }


@pytest.fixture(scope="module")
def problems():
    return check_layout(PACKAGE)


def test_no_module_imports_one_of_a_higher_layer(problems):
    assert not problems["layering"], "\n".join(problems["layering"])


def test_no_import_cycle_between_modules(problems):
    assert not problems["module cycles"], "\n".join(problems["module cycles"])


def test_no_two_packages_of_a_layer_import_each_other(problems):
    assert not problems["package cycles"], "\n".join(problems["package cycles"])


def test_the_readme_layout_table_matches_the_tree():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `espnet2_slap/([a-z_]+)(?:/|\.py)` \| (\d) \|", table, flags=re.M)
    assert listed, "no espnet2_slap rows with a layer column in the README's Layout table"
    there = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    there.discard("__init__")
    assert {name for name, _ in listed} == there
    assert {name: int(layer) for name, layer in listed} == {name: LAYER.get(name) for name in there}
    # in the order of LAYERS, low to high
    assert [int(layer) for _, layer in listed] == sorted(int(layer) for _, layer in listed)


INJECTIONS = {
    # a relative import of an entry point in layer 2
    "a relative upward import": (
        {"layers/mlp.py": "from ..bin import slap_train  # noqa"},
        {"layering": ["espnet2_slap/layers/mlp.py:", "from ..bin import slap_train", "espnet2_slap.bin.slap_train"]},
    ),
    # a module named as a string, imported in a function
    "a string import in a function": (
        {
            "corpora/captions.py": "def _injected():\n    import importlib\n\n"
            '    return importlib.import_module("espnet2_slap.bin.slap_export")'
        },
        {
            "layering": [
                "espnet2_slap/corpora/captions.py:",
                "import_module('espnet2_slap.bin.slap_export'",
                "(corpora)",
            ]
        },
    ),
    # train imports tasks, which imports train (a module cycle too where tasks.slap imports train.trainer, as now:
    # the next injection shows that check on its own)
    "a train-tasks cycle": (
        {"train/trainer.py": "from espnet2_slap.tasks.slap import SLAPTask  # noqa"},
        {"package cycles": ["import each other", "tasks -> train:", "train -> tasks:", "train/trainer.py:"]},
    ),
    # a cycle of three modules of one package, made by relative imports
    "a module cycle": (
        {
            "train/trainer.py": "from . import preprocessor  # noqa",
            "train/preprocessor.py": "from .lazy_sound import AudioFileRef  # noqa",
            "train/lazy_sound.py": "def _injected():\n    from .trainer import SLAPTrainer  # noqa",
        },
        {
            "module cycles": [
                "espnet2_slap.train.lazy_sound -> espnet2_slap.train.trainer -> espnet2_slap.train.preprocessor"
                " -> espnet2_slap.train.lazy_sound",
                "train/lazy_sound.py:",
                "from .trainer import SLAPTrainer",
            ]
        },
    ),
}


@pytest.mark.parametrize("injection", list(INJECTIONS))
def test_the_layering_check_catches_relative_string_and_cyclic_imports(injection, tmp_path):
    """Each injection, in a copy of the package, makes a new problem of each check it breaks, naming where it is
    (compared with the copy before: the checks of the tree itself are the tests above)."""
    lines, expected = INJECTIONS[injection]
    root = tmp_path / PACKAGE.name
    shutil.copytree(PACKAGE, root, ignore=lambda d, names: [n for n in names if n == "__pycache__"])
    before = check_layout(root)
    for rel, code in lines.items():
        path = root / rel
        path.write_text(path.read_text(encoding="utf-8") + "\n\n" + code + "\n", encoding="utf-8")
    after = check_layout(root)
    for check, words in expected.items():
        new = [p for p in after[check] if p not in before[check]]
        assert any(all(w in p for w in words) for p in new), f"{injection}: not caught by {check}: {new}"
