"""Kaldi/ESPnet queue configs (``conf/slurm.conf``): how ``--gpu 2 --mem 4G ...`` become submit options."""

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

REFERENCE = re.compile(r"\$\{([A-Za-z_]\w*)\}")


class JobRunnerError(RuntimeError):
    """A usage, configuration or submission error (not a failing job)."""


@dataclass
class QueueConfig:
    """A Kaldi/ESPnet queue config::

    command sbatch --export=PATH          # the submit command and its fixed options
    option mem=* --mem-per-cpu $0         # --mem VALUE adds these options, $0 replaced by VALUE
    option mem=0                          # --mem 0 adds nothing (an exact value wins over *)
    default gpu=0                         # the value when --gpu is not given
    option gpu=0 -p cpu
    option gpu=* -p gpu --gres=gpu:$0
    option num_nodes=* -l select=$0:ncpus=${num_threads}   # ${NAME}: the value of --NAME (or its default)

    A line that uses another option's value as ``${NAME}`` takes that option over: NAME's own line is left out
    (a job on several nodes asks for its per-node resources in one request, e.g. PBS's ``select``).
    """

    command: List[str]
    rules: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)  # name -> {value or "*": options}
    defaults: Dict[str, str] = field(default_factory=dict)
    source: str = "queue config"

    @classmethod
    def parse(cls, text: str, source: str = "queue config") -> "QueueConfig":
        command, rules, defaults = None, {}, {}
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = re.sub(r"\s*#.*", "", raw).strip()
            if not line:
                continue
            keyword, rest = (line.split(None, 1) + [""])[:2]
            spec, options = (rest.split(None, 1) + [""])[:2]
            name, eq, value = spec.partition("=")
            if keyword == "command" and rest:
                command = shlex.split(rest)
            elif keyword == "option" and eq and name and value:
                if value == "*" and "$0" not in options:
                    raise JobRunnerError(f"{source}:{lineno}: 'option {name}=*' needs $0 in its options: {raw}")
                rules.setdefault(name, {})[value] = shlex.split(options)
            elif keyword == "default" and eq and name and value and not options:
                defaults[name] = value
            else:
                raise JobRunnerError(f"{source}:{lineno}: cannot parse '{raw}' (command/option/default lines)")
        if command is None:
            raise JobRunnerError(f"{source}: no 'command' line")
        return cls(command, rules, defaults, source)

    @classmethod
    def read(cls, path: Path) -> "QueueConfig":
        return cls.parse(Path(path).read_text(), str(path))

    def submit_options(self, given: Dict[str, str]) -> List[str]:
        """The options for the given values (defaults filled in), in the order of the config's option lines."""
        values = {**self.defaults, **given}
        for name, value in values.items():
            if name not in self.rules or (value not in self.rules[name] and "*" not in self.rules[name]):
                raise JobRunnerError(f"option --{name} {value} is not described in {self.source}")
        lines = {
            name: by_value[value] if value in by_value else [o.replace("$0", value) for o in by_value["*"]]
            for name, by_value in self.rules.items()
            if name in values
            for value in [values[name]]
        }
        taken = {ref: name for name, words in lines.items() for w in words for ref in REFERENCE.findall(w)}
        for ref, name in taken.items():
            if ref not in values:
                raise JobRunnerError(f"{self.source}: the line of --{name} uses ${{{ref}}}: give --{ref} or a default")

        def fill(word: str) -> str:
            return REFERENCE.sub(lambda m: values[m.group(1)], word)

        return [fill(w) for name, words in lines.items() if name not in taken for w in words]
