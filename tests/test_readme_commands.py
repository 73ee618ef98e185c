"""Every command the READMEs give is one the project takes, so a stale one fails here (issue 24).

The commands are read from README.md, bench/README.md (the measured figures and the commands that give them) and
egs/*/slap1/README.md: fenced and indented code blocks and inline code, with line continuations,
``&&``/``;``/``|`` chains, comments, ``cd`` and environment prefixes. Checked:

- ``./run.sh`` and ``./slap.sh``: each ``--option`` is one of slap.sh (its ``# ---- options:`` block, ``-`` and
  ``_`` alike) and has a value, ``--stage``/``--stop_stage`` are numbers, the config files of ``--train_config``,
  ``--score_config`` and ``--inference_config`` given as recipe paths exist in the recipe, and what
  ``--local_data_opts``, ``--train_args`` and ``--embed_args`` hold are options of ``local/data.sh``,
  ``slap_train`` and ``slap_embed``;
- ``./sweep.sh``: its options (its own parser's), the study file in the recipe, and after ``--`` run.sh's;
- ``local/X.sh``: the script is in the recipe, and the options it is given are those of its parser (or of the
  module it hands them to);
- ``python -m espnet2_slap.X [sub]`` and ``bench/X.py``: the module runs (``--help``), the subcommand is one of
  it, and each ``--option`` is in the ``--help`` of the subcommand (one process gives every entry point's help).

Inline code that is only options (``--max_epoch``) names options of a command nearby: each must be an option of
run.sh, of the recipe's ``local/data.sh`` (in a recipe's README), or of a tool named in its paragraph, in its
section's code blocks or in its headings (``slap_train``, ``sweep.sh``, ``local/X.sh``, ``python -m ...``,
``bench/X.py``); a paragraph that names an outside tool (a scheduler, ``pytest``) is not checked.
A recipe path in README.md or bench/README.md is looked for in the recipe the block ``cd``s into, else in those its
paragraph names (``egs/<corpus>/slap1``), else in any recipe. ``<placeholders>`` in paths are wildcards. Runs in
about 10 s (the entry points' imports).
"""

import json
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import pytest
from conftest import REPO

READMES = [REPO / "README.md", REPO / "bench" / "README.md", *sorted(REPO.glob("egs/*/slap1/README.md"))]
TEMPLATE = REPO / "egs" / "TEMPLATE" / "slap1"
RECIPES = {path.parent.parent.name: path.parent for path in sorted(REPO.glob("egs/*/slap1/run.sh"))}
ENTRY_POINTS = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts)
    for path in (REPO / "espnet2_slap").rglob("*.py")
    if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
)
BIN_NAMES = {module.rsplit(".", 1)[1]: module for module in ENTRY_POINTS if ".bin." in module}
# the bench scripts (run as bench/x.py): their help is read too
BENCH = sorted(str(path.relative_to(REPO)) for path in (REPO / "bench").glob("*.py"))
# what a prose mention stands for besides the entry points' own names: the task slap_train trains
ALIASES = {"SLAPTask": "espnet2_slap.bin.slap_train", "espnet2_slap.tasks.slap": "espnet2_slap.bin.slap_train"}
CONF_OPTIONS = {"train_config", "score_config", "inference_config", "config", "study"}
NESTED = {"train_args": "espnet2_slap.bin.slap_train", "embed_args": "espnet2_slap.bin.slap_embed"}
# inline code naming a tool outside the project: the options around it may be its own
EXTERNAL = re.compile(
    r"^(\$\{\w+\}|sbatch|qsub|srun|mpirun|scancel|salloc|slurmd|slurmctld|munged|yt-dlp|ffmpeg|pytest|pip|apt-get|"
    r"rsync|git|\S*conf/\S+\.conf)(\s|$)"
)
PLACEHOLDER = re.compile(r"<[^<>]*>")
SHELL_FENCES = {"", "sh", "bash", "shell", "console"}

# --help of every entry point and of each of its subcommands, and of the bench scripts (their path for a module),
# in one process (each import is mostly torch's): {module: {"": help, sub: help of sub}}
HELP_SCRIPT = textwrap.dedent("""
    import contextlib, io, json, os, re, runpy, sys

    def help_of(module, args):
        out = io.StringIO()
        sys.argv = [module, *args, "--help"]
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                if module.endswith(".py"):  # as `python bench/x.py` runs it: its directory first on the path
                    sys.path.insert(0, os.path.dirname(module))
                    try:
                        runpy.run_path(module, run_name="__main__")
                    finally:
                        sys.path.pop(0)
                else:
                    runpy.run_module(module, run_name="__main__", alter_sys=False)
        except SystemExit:
            pass
        except Exception as e:  # a module that does not run: its help is the error
            return f"ERROR: {type(e).__name__}: {e}"
        return out.getvalue()

    out_path, modules = sys.argv[1], sys.argv[2:]
    found = {}
    for module in modules:
        top = help_of(module, [])
        found[module] = {"": top}
        subs = re.search(r"^positional arguments:\\n\\s+\\{([\\w,-]+)\\}", top, re.M)
        for sub in subs.group(1).split(",") if subs else []:
            found[module][sub] = help_of(module, [sub])
    with open(out_path, "w") as f:
        json.dump(found, f)
    """)


@dataclass
class Problem:
    """A stale command: where, what, why."""

    where: str
    command: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: `{self.command}`: {self.why}"


@dataclass
class Snippet:
    """Shell text of a README: a logical line of a code block, or an inline code span."""

    readme: Path
    line: int
    text: str
    inline: bool
    recipes: List[str]  # the recipes its paths are looked for in (empty: any)
    section: int  # index into Markdown.sections
    paragraph: int  # index into Markdown.paragraphs (-1: code)
    block: int = -1  # the code block it is in (-1: inline)


@dataclass
class Markdown:
    """What the checks need of a README: its shell snippets, and for the options named in prose, the tools each
    section and paragraph names."""

    readme: Path
    snippets: List[Snippet] = field(default_factory=list)
    sections: List[str] = field(default_factory=list)  # each section's headings (its own and above) and code
    paragraphs: List[str] = field(default_factory=list)  # each prose paragraph's text


# ---- the tools: slap.sh, sweep.sh, local scripts, entry points ----


def slap_options() -> Set[str]:
    """slap.sh's options, as its --help prints them: the names of its options block."""
    text = (TEMPLATE / "slap.sh").read_text(encoding="utf-8")
    block = re.search(r"^# ---- options: .*?$(.*?)^# ---- end of options", text, re.M | re.S)
    assert block, "slap.sh has no '# ---- options:' block"
    return set(re.findall(r"^([a-z_]+)=", block.group(1), re.M))


@dataclass
class Script:
    """A shell script's command line: its options (``case "$1"`` patterns), whether any other is refused, and the
    modules (with their subcommand) it hands the rest to."""

    options: Set[str]
    closed: bool
    forwards: List[Tuple[str, str]]


def script_interface(path: Path) -> Script:
    """What ``path`` takes, read from its ``while``/``case "$1"`` parser and its ``python -m`` lines that pass
    ``"$@"`` (or the options its parser left, ``"${opts[@]}"``) on."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")  # a command continued over lines is one line
    options: Set[str] = set()
    closed = False
    parser = re.search(r'case "\$1" in(.*?)\besac\b', text, re.S)
    if parser:
        for pattern, body in re.findall(r"^\s*([^\s()]+)\)(.*)$", parser.group(1), re.M):
            if pattern == "*":
                closed = bool(re.search(r"\bexit [1-9]|\bdie\b", body))
            for alternative in pattern.split("|"):
                if alternative.startswith("--") and len(alternative) > 2:
                    options.add(alternative.removesuffix("=*"))
    forwards = []
    for module, rest in re.findall(r"python -m (espnet2_slap\.[\w.]+)(.*)", text):
        if '"$@"' in rest or "[@]}" in rest:
            sub = re.match(r"\s+(\w+)\b", rest)
            forwards.append((module, sub.group(1) if sub else ""))
    return Script(options, closed, forwards)


def help_options(help_text: str) -> Set[str]:
    """The ``--options`` an argparse help lists: its option lines after the first section heading (not the
    description's text)."""
    start = re.search(r"^(options|optional arguments|positional arguments):$", help_text, re.M)
    if not start:
        return set()
    found = set()
    for line in help_text[start.start() :].splitlines():
        if re.match(r"^  -", line):
            found.update(re.findall(r"(?<![\w-])(--[\w-]+)", re.split(r"\s{2,}", line.strip())[0]))
    return found


def subcommands(help_text: str) -> List[str]:
    """The subcommands an argparse help lists (``{a,b}`` first among its positional arguments)."""
    subs = re.search(r"^positional arguments:\n\s+\{([\w,-]+)\}", help_text, re.M)
    return subs.group(1).split(",") if subs else []


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> "Tools":
    """Every entry point's --help (and its subcommands'), once."""
    out = tmp_path_factory.mktemp("help") / "help.json"
    proc = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT, str(out), *ENTRY_POINTS, *(str(REPO / b) for b in BENCH)],
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    helps = json.loads(out.read_text())
    return Tools({name.removeprefix(f"{REPO}/"): text for name, text in helps.items()})


class Tools:
    """The command lines the READMEs' commands must fit."""

    def __init__(self, helps: Dict[str, Dict[str, str]]):
        self.helps = helps
        self.slap = slap_options()
        self.sweep = script_interface(TEMPLATE / "sweep.sh")

    def module_options(self, module: str, sub: str = "") -> Set[str]:
        """The options of ``python -m module [sub]``; with no sub, those of the module and all its subcommands."""
        helps = self.helps.get(module, {})
        if sub:
            return help_options(helps.get(sub, ""))
        return set().union(*(help_options(text) for text in helps.values())) if helps else set()

    def script_options(self, path: Path) -> Optional[Set[str]]:
        """The options a recipe script takes; None when it takes anything (no closed parser, nothing to check)."""
        script = script_interface(path)
        if script.closed:
            return script.options
        if not script.forwards:
            return None if not script.options else script.options
        found = set(script.options)
        for module, sub in script.forwards:
            found |= self.module_options(module, sub if sub in self.helps.get(module, {}) else "")
        return found


# ---- reading the READMEs ----


def read_markdown(readme: Path) -> Markdown:
    """The shell snippets of ``readme`` (code blocks' logical lines, inline code), with the sections and
    paragraphs they are in."""
    md = Markdown(readme)
    own = [own_recipe(readme)] if own_recipe(readme) else []
    lines = readme.read_text(encoding="utf-8").splitlines()
    section_text: List[List[str]] = [[]]
    headings: List[Tuple[int, str]] = []  # the open headings: (level, title)
    paragraph: List[Tuple[int, str]] = []  # the prose paragraph being read: (line number, text)
    last_paragraph = ""
    code: List[Tuple[int, str]] = []
    fence: Optional[str] = None  # the language of the fenced block being read
    blocks = 0

    def close_paragraph():
        nonlocal last_paragraph
        if not paragraph:
            return
        text = "\n".join(t for _, t in paragraph)
        md.paragraphs.append(text)
        last_paragraph = text
        for match in re.finditer(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", text, re.S):
            line = paragraph[0][0] + text.count("\n", 0, match.start())
            span = match.group(2).strip()
            recipes = own or mentioned_recipes(text[: match.start()])
            md.snippets.append(
                Snippet(readme, line, span, True, recipes, len(section_text) - 1, len(md.paragraphs) - 1)
            )
        paragraph.clear()

    def close_code():
        nonlocal blocks
        if not code:
            return
        recipes = own or mentioned_recipes(last_paragraph)
        blocks += 1
        for number, text in logical_lines(code):
            md.snippets.append(Snippet(readme, number, text, False, recipes, len(section_text) - 1, -1, blocks))
        code.clear()

    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith("```"):
                fence = None
                close_code()
            elif fence in SHELL_FENCES:
                code.append((number, line))
            section_text[-1].append(line)
            continue
        if stripped.startswith("```"):
            close_paragraph()
            fence = stripped[3:].strip().lower()
            continue
        if line.startswith(("    ", "\t")) and (code or not paragraph) and stripped:
            close_paragraph()
            code.append((number, line.strip()))
            section_text[-1].append(line)
            continue
        if code and not stripped:
            continue  # a blank line inside an indented block
        close_code()
        heading = re.match(r"^(#{1,6})\s+(.*)", line)
        if heading:
            close_paragraph()
            level = len(heading.group(1))
            headings = [h for h in headings if h[0] < level] + [(level, heading.group(2))]
            section_text.append([title for _, title in headings])
            md.paragraphs.append(heading.group(2))
            continue
        if stripped:
            paragraph.append((number, line))
        else:
            close_paragraph()
    close_paragraph()
    close_code()
    md.sections = ["\n".join(text) for text in section_text]
    return md


def own_recipe(readme: Path) -> str:
    """The recipe whose README ``readme`` is (egs/<corpus>/slap1/README.md); "" for the top README."""
    return readme.parent.parent.name if readme.parent.parent.parent.name == "egs" else ""


def mentioned_recipes(text: str) -> List[str]:
    """The recipes ``text`` names as ``egs/<corpus>/slap1``."""
    return [name for name in dict.fromkeys(re.findall(r"egs/(\w+)/slap1", text)) if name in RECIPES]


def logical_lines(code: Sequence[Tuple[int, str]]) -> Iterator[Tuple[int, str]]:
    """A code block's lines with backslash continuations joined, each with its first line's number."""
    joined, first = "", 0
    for number, line in code:
        if not joined:
            first = number
        if line.rstrip().endswith("\\"):
            joined += line.rstrip()[:-1] + " "
            continue
        yield first, joined + line
        joined = ""
    if joined:
        yield first, joined


def strip_comment(text: str) -> str:
    """``text`` without its shell comment (a ``#`` starting a word, outside quotes)."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i]
    return text


def split_commands(text: str) -> List[List[str]]:
    """The simple commands of a shell line: words, split at ``&&``, ``||``, ``;`` and ``|``."""
    lexer = shlex.shlex(strip_comment(text), posix=True, punctuation_chars="&|;")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: prose, not a command
        return []
    commands: List[List[str]] = [[]]
    for word in words:
        if word and set(word) <= set("&|;"):
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


# ---- the checks ----


class Checker:
    """Checks the snippets of the READMEs against the tools; ``problems`` collects what is stale."""

    def __init__(self, tools: Tools):
        self.tools = tools
        self.problems: List[Problem] = []
        self.commands = 0  # how many commands were checked

    def fail(self, snippet: Snippet, command: str, why: str) -> None:
        self.problems.append(Problem(f"{shown(snippet.readme)}:{snippet.line}", " ".join(command.split()), why))

    # -- commands --

    def check_markdown(self, md: Markdown) -> None:
        """Each snippet that is a command; those that are only options (``--x``) against what the section names."""
        context: Dict[int, List[str]] = {}  # a code block's recipe after a `cd` (by block)
        for snippet in md.snippets:
            if snippet.inline and snippet.text.startswith("--"):
                self.check_prose_options(md, snippet)
                continue
            for words in split_commands(snippet.text):
                self.check_command(snippet, words, context)

    def check_command(self, snippet: Snippet, words: List[str], context: Dict[int, List[str]]) -> None:
        """One simple command: a ``cd`` into a recipe sets its block's recipe; run.sh, slap.sh, sweep.sh, local
        scripts, entry points and bench scripts are checked; anything else is not ours."""
        while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
            words = words[1:]  # SLAP_OFFLINE=1 ./run.sh
        if not words:
            return
        program, args = words[0], words[1:]
        recipes = context.get(snippet.block, snippet.recipes)
        if program == "cd" and args:
            names = [n for n in re.findall(r"(\w+)/slap1", args[0]) if n in RECIPES]
            context[snippet.block] = names[-1:] or snippet.recipes
            return
        command = " ".join(shlex.quote(w) for w in words)
        name = Path(program).name
        if name in ("run.sh", "slap.sh") and not PLACEHOLDER.search(program):
            self.commands += 1
            if "/" in program.lstrip("./"):  # ./egs/mini_synth/slap1/run.sh
                recipes = mentioned_recipes(program)
                if not (REPO / program).exists():
                    self.fail(snippet, command, f"{program} does not exist")
            self.check_slap_args(snippet, command, args, recipes)
        elif name == "sweep.sh":
            self.commands += 1
            self.check_sweep_args(snippet, command, args, recipes)
        elif re.fullmatch(r"(\./)?local/[\w.-]+\.sh", program):
            self.commands += 1
            self.check_local_script(snippet, command, program.removeprefix("./"), args, recipes)
        elif name.startswith("python") and args[:1] == ["-m"] and args[1:2] and args[1].startswith("espnet2_slap"):
            self.commands += 1
            self.check_module(snippet, command, args[1], args[2:], recipes)
        elif re.fullmatch(r"(\./)?bench/\w+\.py", program):
            self.commands += 1
            self.check_module(snippet, command, program.removeprefix("./"), args, recipes)
        elif name.startswith("python") and args and re.fullmatch(r"(\./)?bench/\w+\.py", args[0]):
            self.commands += 1
            self.check_module(snippet, command, args[0].removeprefix("./"), args[1:], recipes)

    def check_slap_args(self, snippet: Snippet, command: str, args: List[str], recipes: List[str]) -> None:
        """run.sh and slap.sh: ``--name value`` or ``--name=value`` pairs of slap.sh's options, as it parses them."""
        i = 0
        while i < len(args):
            word = args[i]
            i += 1
            if word in ("-h", "--help"):
                continue
            if word == "..." or PLACEHOLDER.fullmatch(word):
                continue
            if not word.startswith("--"):
                self.fail(snippet, command, f"unexpected argument {word!r}: slap.sh takes --name value pairs")
                continue
            if "=" in word:
                name, value = word[2:].split("=", 1)
            elif i < len(args):
                name, value = word[2:], args[i]
                i += 1
            else:
                self.fail(snippet, command, f"{word} needs a value")
                continue
            self.check_slap_option(snippet, command, name, value, recipes)

    def check_slap_option(self, snippet: Snippet, command: str, name: str, value: Optional[str], recipes) -> None:
        """One option of slap.sh and its value (None: not given in the snippet)."""
        key = name.replace("-", "_")
        if key not in self.tools.slap:
            hint = ' (training options go in --train_args "--name value")' if key in self.slap_train_only() else ""
            self.fail(snippet, command, f"--{name} is not an option of slap.sh (./slap.sh --help){hint}")
            return
        if value is None:
            return
        if key in ("stage", "stop_stage") and not value.isdigit():
            self.fail(snippet, command, f"--{name} takes a stage number, not {value!r}")
        elif key in CONF_OPTIONS:
            self.check_recipe_path(snippet, command, name, value, recipes)
        elif key == "local_data_opts":
            self.check_local_script(snippet, command, "local/data.sh", split_words(value), recipes, given=name)
        elif key in NESTED:
            self.check_options(snippet, command, split_words(value), self.tools.module_options(NESTED[key]), name)

    def slap_train_only(self) -> Set[str]:
        """The training options run.sh does not take itself (names without ``--``)."""
        return {o[2:] for o in self.tools.module_options("espnet2_slap.bin.slap_train")} - self.tools.slap

    def check_sweep_args(self, snippet: Snippet, command: str, args: List[str], recipes: List[str]) -> None:
        """sweep.sh: its own options (each with a value) up to ``--``, then run.sh's."""
        sweep = self.tools.sweep
        i = 0
        while i < len(args):
            word = args[i]
            i += 1
            if word == "--":
                self.check_slap_args(snippet, command, args[i:], recipes)
                return
            if word in ("-h", "--help") or word == "...":
                continue
            if word not in sweep.options:
                self.fail(snippet, command, f"{word} is not an option of sweep.sh ({', '.join(sorted(sweep.options))})")
                continue
            if i >= len(args):
                self.fail(snippet, command, f"{word} needs a value")
                continue
            value = args[i]
            i += 1
            if word == "--stage" and not value.isdigit():
                self.fail(snippet, command, f"--stage takes a stage number, not {value!r}")
            if word == "--study":
                self.check_recipe_path(snippet, command, "study", value, recipes)

    def check_local_script(
        self, snippet: Snippet, command: str, script: str, args: List[str], recipes: List[str], given: str = ""
    ) -> None:
        """A recipe's ``local/X.sh``: there, and given only options it takes."""
        paths = [RECIPES[r] / script for r in recipes] if recipes else [r / script for r in RECIPES.values()]
        there = [p for p in paths if p.exists()]
        if recipes and len(there) < len(paths) or not there:
            missing = ", ".join(shown(p) for p in paths if not p.exists())
            self.fail(snippet, command, f"{script} is not in the recipe ({missing or 'no recipe has it'})")
        words = [w.strip("[]") for w in args]
        interfaces = [(path, self.tools.script_options(path)) for path in there]
        if not recipes:  # in any recipe: the options of any
            interfaces = [(Path(f"<recipe>/{script}"), set().union(*(k for _, k in interfaces if k is not None)))]
        for path, known in interfaces:
            if known is not None:
                where = f"{given} for {shown(path)}" if given else shown(path)
                self.check_options(snippet, command, words, known, where)

    def check_module(self, snippet: Snippet, command: str, module: str, args: List[str], recipes) -> None:
        """``python -m module [sub] --options``: the module runs, the subcommand is one of it, and its --help
        lists each option."""
        if PLACEHOLDER.search(module):
            return
        helps = self.tools.helps.get(module)
        if helps is None:
            self.fail(snippet, command, f"no entry point {module} (it does not run)")
            return
        if helps[""].startswith("ERROR") or "usage:" not in helps[""]:
            self.fail(snippet, command, f"python -m {module} --help fails: {helps[''][:300]}")
            return
        subs = subcommands(helps[""])
        chosen = [""]
        first = args[0] if args and not args[0].startswith("-") else ""
        if subs and (first or any(w.startswith("--") and w != "--help" for w in args)):
            chosen = first.strip("{}").split(",") if first else []
            if not chosen or any(s not in subs for s in chosen):
                self.fail(snippet, command, f"{module} takes a subcommand first ({', '.join(subs)}), not {first!r}")
                return
        before_separator = args[: args.index("--")] if "--" in args else args
        for sub in chosen:
            known = help_options(helps[sub]) | {"--help"}
            self.check_options(snippet, command, before_separator, known, f"python -m {module} {sub}".strip())
        for option, value in option_values(before_separator):
            if option[2:] in CONF_OPTIONS and value is not None:
                self.check_recipe_path(snippet, command, option[2:], value, recipes)

    def check_options(self, snippet: Snippet, command: str, words: List[str], known: Set[str], what: str) -> None:
        """Each ``--option`` word (no spaces in it, no placeholder) is among ``known``."""
        for word in words:
            if word == "--" or not word.startswith("--") or any(c.isspace() for c in word):
                continue
            option = word.split("=", 1)[0]
            if PLACEHOLDER.search(option) or option in known:
                continue
            self.fail(snippet, command, f"{option} is not an option of {what}")

    def check_recipe_path(self, snippet: Snippet, command: str, option: str, value: str, recipes: List[str]) -> None:
        """A config given as a recipe path (``conf/...``, ``../../<corpus>/slap1/conf/...``) is in the recipe;
        ``<placeholders>`` match anything."""
        if value.startswith("/") or not (value.startswith("conf/") or "/conf/" in value) or "$" in value:
            return
        pattern = PLACEHOLDER.sub("*", value)
        if value.startswith("egs/"):  # a path from the repository's top
            if not any(REPO.glob(pattern)):
                self.fail(snippet, command, f"--{option} {value}: there is no such file")
            return
        names = recipes or list(RECIPES)
        found = [r for r in names if any(RECIPES[r].glob(pattern)) or (RECIPES[r] / pattern).exists()]
        if recipes and len(found) < len(names):
            missing = ", ".join(f"egs/{r}/slap1/{value}" for r in names if r not in found)
            self.fail(snippet, command, f"--{option} {value}: there is no {missing}")
        elif not found:
            self.fail(snippet, command, f"--{option} {value}: no recipe has it")

    # -- options named in prose --

    def check_prose_options(self, md: Markdown, snippet: Snippet) -> None:
        """Inline code of options alone: options of run.sh, of the recipe's local/data.sh, or of a tool named around
        it (``named_tools``); not checked where the paragraph names an outside tool."""
        words = split_words(snippet.text)
        pairs = option_values(words)
        if not pairs:
            return
        self.commands += 1
        known = self.section_options(md, snippet)
        outside = any(EXTERNAL.match(span) for span in re.findall(r"`([^`]+)`", md.paragraphs[snippet.paragraph]))
        for option, value in pairs:
            if PLACEHOLDER.search(option):
                continue
            if option[2:].replace("-", "_") in self.tools.slap and option not in known:
                self.check_slap_option(snippet, snippet.text, option[2:], value, snippet.recipes)
            elif option not in known and not outside:
                where = "run.sh" + (", local/data.sh" if own_recipe(md.readme) else "")
                named = sorted(self.named_tools(md, snippet))
                tools = ", ".join([where] + [n.removeprefix("espnet2_slap.bin.") for n in named])
                hint = ' (run.sh takes training options as --train_args "--name value")'
                hint = hint if option[2:] in self.slap_train_only() else ""
                self.fail(snippet, snippet.text, f"{option} is not an option of {tools} (named around it){hint}")

    def named_tools(self, md: Markdown, snippet: Snippet) -> Set[str]:
        """The tools the snippet's paragraph, its section's code blocks and its headings (its section's and those
        above) name: entry points, bench scripts, sweep.sh, local scripts."""
        text = md.sections[snippet.section]
        if snippet.paragraph >= 0:
            text += "\n" + md.paragraphs[snippet.paragraph]
        found = {m for m in re.findall(r"python -m (espnet2_slap\.[\w.]+)", text) if m in ENTRY_POINTS}
        found |= {BIN_NAMES[w] for w in re.findall(r"\b(\w+)\b", text) if w in BIN_NAMES}
        found |= {b for b in re.findall(r"\bbench/\w+\.py\b", text) if b in BENCH}
        found |= {module for alias, module in ALIASES.items() if alias in text}
        found |= {f"local/{name}" for name in re.findall(r"\blocal/([\w.-]+\.sh)\b", text)}
        if re.search(r"\bsweep\.sh\b", text):
            found.add("sweep.sh")
        return found

    def section_options(self, md: Markdown, snippet: Snippet) -> Set[str]:
        """The options named tools take (run.sh's are checked on their own)."""
        known: Set[str] = {"--help"}
        own = RECIPES[own_recipe(md.readme)] if own_recipe(md.readme) else None
        scripts = {"local/data.sh"} if own else set()
        for tool in self.named_tools(md, snippet):
            if tool == "sweep.sh":
                known |= self.tools.sweep.options
            elif tool.startswith("local/"):
                scripts.add(tool)
            else:
                known |= self.tools.module_options(tool)
        for script in scripts:
            for recipe in [own] if own else RECIPES.values():
                if (recipe / script).exists():
                    known |= self.tools.script_options(recipe / script) or set()
        return known


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is in it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def split_words(text: str) -> List[str]:
    """Shell words of ``text`` (whitespace-split when its quotes do not close)."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def option_values(words: List[str]) -> List[Tuple[str, Optional[str]]]:
    """``(--option, value)`` of each option word: the value after ``=``, or the next word unless it is an option."""
    pairs = []
    for i, word in enumerate(words):
        word = word.strip("[]")
        if not word.startswith("--") or word == "--" or any(c.isspace() for c in word):
            continue
        if "=" in word:
            pairs.append(tuple(word.split("=", 1)))
        else:
            value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else None
            pairs.append((word, value))
    return pairs


def check_readmes(tools: Tools, readmes: Sequence[Path] = READMES) -> Checker:
    """The checks of every README's commands."""
    checker = Checker(tools)
    for readme in readmes:
        checker.check_markdown(read_markdown(readme))
    return checker


def report(problems: List[Problem]) -> str:
    """The problems, a line each."""
    return f"{len(problems)} stale command(s) in the READMEs:\n" + "\n".join(f"  {p}" for p in problems)


# ---- the tests ----


def test_every_readme_command_is_one_the_project_takes(tools):
    """README.md and egs/*/slap1/README.md: each stale command named with its file and line."""
    checker = check_readmes(tools)
    assert checker.commands >= 100, f"only {checker.commands} commands found: is the README reader broken?"
    assert not checker.problems, report(checker.problems)


def test_every_entry_point_gives_its_help(tools):
    """The --help the checks read: each entry point runs, and a subcommand's help is its own."""
    broken = {m: tools.helps[m][""][:300] for m in ENTRY_POINTS if "usage:" not in tools.helps[m][""]}
    assert not broken, broken
    assert subcommands(tools.helps["espnet2_slap.bin.slap_fetch"][""]) == [
        "corpus",
        "clips",
        "missing",
        "pretrained",
        "check",
    ]
    assert "--root" in tools.module_options("espnet2_slap.bin.slap_fetch", "corpus")
    assert "--root" not in tools.module_options("espnet2_slap.bin.slap_fetch", "check")
    assert "--max_epoch" in tools.module_options("espnet2_slap.bin.slap_train")
    assert {"max_epoch", "frontend_conf"}.isdisjoint(tools.slap) and {"fs", "stop_stage"} <= tools.slap


def test_stale_commands_are_caught(tools, tmp_path):
    """The checker itself: each stale command of a README is reported with its line, the good ones are not."""
    recipe = tmp_path / "egs" / "mini_synth" / "slap1"
    (recipe / "local").mkdir(parents=True)
    (recipe / "local" / "data.sh").write_text((RECIPES["mini_synth"] / "local" / "data.sh").read_text())
    (recipe / "conf" / "sweep").mkdir(parents=True)
    (recipe / "conf" / "sweep" / "lambda.yaml").write_text("")
    readme = recipe / "README.md"
    readme.write_text(
        textwrap.dedent("""\
            # a recipe

            ## Run
                ./run.sh --stage 5 --train_args "--max_epoch 60"        # good
                ./run.sh --max_epoch 60                                 # stale: line 5
                ./run.sh --stage five \\
                    --train_config conf/tuning/no_such.yaml             # stale twice: line 6
                SLAP_OFFLINE=1 ./run.sh --fs 16000 && ./slap.sh --help  # good
                ./sweep.sh --study conf/sweep/lambda.yaml -- --nbpe 10  # good
                ./sweep.sh --study conf/sweep/gone.yaml -- --no_such 1  # stale twice: line 10
                local/data.sh --num_train 4 --seed 1                    # good
                local/data.sh --num_trains 4                            # stale: line 12
                local/nothing.sh                                        # stale: line 13
                python -m espnet2_slap.bin.slap_fetch corpus gtzan --root d --retries 3   # good
                python -m espnet2_slap.bin.slap_fetch check --root d    # stale: line 15
                python -m espnet2_slap.bin.slap_gone --help             # stale: line 16
                cd ../../gtzan/slap1 && local/download.sh --retries 3   # good: gtzan's
                python bench/load_audio.py --minutes 1 --hours 2        # stale: line 18

            To train further, raise `--max_epoch` and run it again (stale: line 20); `--nbpe 120` is fine.
            `./run.sh --local_data_opts "--num_test 4"` is fine, `./run.sh --local_data_opts "--nope 1"` is not
            (line 21).

            `--gpu 2` is an option of `sbatch` (not checked).

            ## Training
            `--fresh_batches true` of `slap_train` is fine.
            """),
        encoding="utf-8",
    )
    saved = dict(RECIPES)
    RECIPES["mini_synth"] = recipe
    try:
        checker = Checker(tools)
        checker.check_markdown(read_markdown(readme))
    finally:
        RECIPES.clear()
        RECIPES.update(saved)
    lines = sorted(int(p.where.rsplit(":", 1)[1]) for p in checker.problems)
    assert lines == [5, 6, 6, 10, 10, 12, 13, 15, 16, 18, 20, 21], report(checker.problems)
    hints = [p.why for p in checker.problems if p.where.endswith((":5", ":20"))]
    assert all("--train_args" in why for why in hints), report(checker.problems)
