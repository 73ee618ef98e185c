"""Which epochs the evaluated model averages, and why: the recipe's rule (slap.sh --model_selection) and its
record, ``<exp>/model_selection.json``.

Rules (ESPnet's trainer averages the ``keep_nbest_models`` best epochs by the first ``best_model_criterion``
into ``<phase>.<key>.ave.pth``):
  - config: the config's best_model_criterion, e.g. ``valid r1_t2a max`` -> ``valid.r1_t2a.ave.pth``;
  - last: ``valid epoch max`` (SLAPTrainer reports ``epoch`` at validation): the last keep_nbest_models epochs
    -> ``valid.epoch.ave.pth``;
  - auto: last when the validation set has fewer than MIN_VALID_UTTERANCES clips, else config.
A model file given by hand (slap.sh --inference_model) is recorded as the rule ``inference_model``.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import yaml

# Fewer validation clips than this make a ranking of epochs a draw: an in-batch recall over N clips moves in
# steps of 1/N (0.2 for 5 clips) and its binomial noise, sqrt(p (1 - p) / N), is 5 points at N = 100, p = 0.5.
MIN_VALID_UTTERANCES = 100
LAST_EPOCHS = ("valid", "epoch", "max")  # best_model_criterion of the last keep_nbest_models epochs
DEFAULT_CRITERION = ("valid", "loss", "min")  # the first of ESPnet's defaults that a model here reports
OPTIONS = ("auto", "config", "last")
EPOCH_FILE = re.compile(r"(\d+)epoch\.pth")
RECORD_KEYS = (
    "model_file", "rule", "criterion", "epochs", "values", "epochs_trained", "max_epoch", "valid_utterances", "reason"
)  # fmt: skip

Criterion = Tuple[str, str, str]


@dataclass(frozen=True)
class Rule:
    """A rule of model selection: its name (config or last), the best_model_criterion training averages by
    (phase, key, mode), and why it applies (a clause)."""

    name: str
    criterion: Criterion
    why: str

    @property
    def model_file(self) -> str:
        """The n-best average ESPnet writes for the criterion, e.g. ``valid.epoch.ave.pth``."""
        return f"{criterion_name(self.criterion)}.ave.pth"


def criterion_name(criterion: Sequence[str]) -> str:
    """("valid", "r1_t2a", "max") -> "valid.r1_t2a"."""
    return f"{criterion[0]}.{criterion[1]}"


def read_yaml(path: Path) -> Dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a training config (a YAML mapping)")
    return config


def first_criterion(config: Dict, path: Path) -> Criterion:
    """The first best_model_criterion of a training config (``path``, named in errors), else valid loss min."""
    criteria = config.get("best_model_criterion") or [DEFAULT_CRITERION]
    first = criteria[0]
    if len(first) != 3 or first[2] not in ("min", "max"):
        raise ValueError(f"{path}: best_model_criterion {first} is not [phase, key, min|max]")
    return tuple(str(part) for part in first)


def count_utterances(path: Path) -> int:
    """The non-empty lines of a list such as ``wav.scp``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (the validation list; stage 2 writes it)")
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def choose_rule(option: str, config_criterion: Criterion, valid_utterances: Optional[int]) -> Rule:
    """The rule of ``option`` (auto, config or last) for a config's criterion and a validation set of
    ``valid_utterances`` clips (None: not known, which ``auto`` needs)."""
    if option not in OPTIONS:
        raise ValueError(f"--model_selection must be one of {', '.join(OPTIONS)}, not {option}")
    if option == "config":
        return Rule("config", config_criterion, "--model_selection config")
    if option == "last":
        return Rule("last", LAST_EPOCHS, "--model_selection last")
    if valid_utterances is None:
        raise ValueError("--model_selection auto needs the number of validation clips")
    if valid_utterances < MIN_VALID_UTTERANCES:
        why = (
            f"the validation set has {valid_utterances} clips, fewer than {MIN_VALID_UTTERANCES}, too few to "
            "rank epochs"
        )
        return Rule("last", LAST_EPOCHS, why)
    why = f"the validation set has {valid_utterances} clips, at least {MIN_VALID_UTTERANCES}, enough to rank epochs"
    return Rule("config", config_criterion, why)


def averaged_count(keep_nbest_models: Union[int, List[int]], epochs: int) -> int:
    """How many epochs ``<phase>.<key>.ave.pth`` averages after ``epochs`` epochs: the largest of
    keep_nbest_models that is at most ``epochs``, else 1 (as espnet2's average_nbest_models does)."""
    nbests = [keep_nbest_models] if isinstance(keep_nbest_models, int) else list(keep_nbest_models) or [1]
    return max([n for n in nbests if n <= epochs] or [1])


def load_reporter(checkpoint: Path):
    """ESPnet's Reporter as it was at the end of the last finished epoch, from ``<exp>/checkpoint.pth``."""
    import torch
    from espnet2.train.reporter import Reporter

    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no such file (ESPnet's trainer writes it after each epoch)")
    try:  # our trainer's own file (it holds the reporter's timedeltas); mmap: the weights are not read
        state = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
    except Exception as e:
        raise ValueError(f"{checkpoint}: not a readable checkpoint of ESPnet's trainer: {e}") from e
    if not isinstance(state, dict) or "reporter" not in state:
        raise ValueError(f"{checkpoint}: no reporter state in it: not a checkpoint of ESPnet's trainer")
    reporter = Reporter()
    reporter.load_state_dict(state["reporter"])
    return reporter


def check_trained_with(rule: Rule, exp_config: Dict, path: Path, option: str) -> None:
    """The model was trained with the rule's criterion (``exp_config``, read from ``path``): else the error
    says what it was trained with."""
    trained = first_criterion(exp_config, path)
    if trained != rule.criterion:
        raise ValueError(
            f"{path}: the model was trained with best_model_criterion {' '.join(trained)}, but --model_selection "
            f"{option} chose {rule.name} ({' '.join(rule.criterion)}; {rule.why}), whose average "
            f"{rule.model_file} training did not write: evaluate it with the matching --model_selection, or name a "
            "model file with --inference_model"
        )


def selection_reason(rule: Rule, count: int, trained: int) -> str:
    """One sentence: which epochs the rule averaged and why."""
    if rule.name == "last":
        return f"the last {count} of {trained} epochs: {rule.why}."
    phase, key, mode = rule.criterion
    by = f"by {phase} {key} ({mode}), the config's best_model_criterion"
    return f"the {count} best of {trained} epochs {by}: {rule.why}."


def inference_model_record(model_file: str) -> Dict:
    """The epochs and reason of a model file given by hand: ``<N>epoch.pth`` is epoch N, others are not known."""
    match = EPOCH_FILE.fullmatch(model_file)
    if match:
        epoch = int(match.group(1))
        return {"epochs": [epoch], "values": [], "reason": f"the model of epoch {epoch}, given with --inference_model."}
    reason = (
        f"{model_file} was given with --inference_model and is not an epoch's model file (<N>epoch.pth): "
        "the epochs it holds are not known."
    )
    return {"epochs": [], "values": [], "reason": reason}


def averaged_epochs(rule: Rule, reporter, exp_config: Dict, checkpoint: Path) -> Dict:
    """The epochs the rule's average holds, best first, with their criterion values, and the reason."""
    phase, key, mode = rule.criterion
    trained = reporter.get_epoch()
    if not reporter.has(phase, key):
        raise ValueError(f"{checkpoint}: no {phase} {key} reported in epoch {trained}")
    count = averaged_count(exp_config.get("keep_nbest_models", 10), trained)
    best = reporter.sort_epochs_and_values(phase, key, mode)[:count]
    return {
        "epochs": [int(e) for e, _ in best],
        "values": [float(v) for _, v in best],
        "reason": selection_reason(rule, len(best), trained),
    }


def selection_record(
    exp: Path, option: str, train_config: Path, valid_list: Optional[Path], inference_model: Optional[str] = None
) -> Dict:
    """What ``<exp>/model_selection.json`` holds (RECORD_KEYS): the model file stage 6 evaluates, the rule that
    chose it (``option`` for ``train_config``, the config given to training, as before training), the epochs it
    averages (best first) with their criterion values, epochs trained (from ``<exp>/checkpoint.pth``), max_epoch,
    the validation clips (``valid_list``, e.g. dump/raw/valid/wav.scp, counted when given; ``auto`` needs it)
    and the reason. The rule must be the one training averaged by (``<exp>/config.yaml``)."""
    config_path, checkpoint = exp / "config.yaml", exp / "checkpoint.pth"
    exp_config = read_yaml(config_path)
    valid_utterances = count_utterances(valid_list) if valid_list is not None else None
    reporter = load_reporter(checkpoint)
    if inference_model:
        chosen = {"model_file": inference_model, "rule": "inference_model", "criterion": None}
        chosen.update(inference_model_record(inference_model))
    else:
        rule = choose_rule(option, first_criterion(read_yaml(train_config), train_config), valid_utterances)
        check_trained_with(rule, exp_config, config_path, option)
        chosen = {"model_file": rule.model_file, "rule": rule.name, "criterion": criterion_name(rule.criterion)}
        chosen.update(averaged_epochs(rule, reporter, exp_config, checkpoint))
    record = dict(
        chosen,
        epochs_trained=reporter.get_epoch(),
        max_epoch=exp_config.get("max_epoch"),
        valid_utterances=valid_utterances,
    )
    return {key: record[key] for key in RECORD_KEYS}


def write_record(record: Dict, path: Path) -> None:
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read_record(path: Path) -> Optional[Dict]:
    """``<exp>/model_selection.json``, or None when there is none (a model trained elsewhere)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON: {e}") from e
    missing = [key for key in RECORD_KEYS if key not in record] if isinstance(record, dict) else RECORD_KEYS
    if missing:
        raise ValueError(f"{path}: not a model selection record (no {', '.join(missing)})")
    return record
