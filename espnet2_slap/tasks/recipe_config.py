"""What the recipe (slap.sh) takes from a model's config, so that the config owns it: the sampling rate its front
end expects and its tokenizer (``recipe_settings``); and a config written by another experiment made usable here,
its relative paths read relative to the experiment that wrote it (``localize_paths``).

ESPnet writes the paths of ``<exp>/config.yaml`` relative to the directory training ran in (the recipe), so the
same ``data/token_list/bpe_unigram100/bpe.model`` names another recipe's tokenizer when read from elsewhere: a
config is only read with the files of the experiment that wrote it, or refused, naming what is missing.
"""

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from espnet2_slap.tasks.slap import SLAPTask


def parse_config(config: Path, extra_args: Sequence[str] = ()) -> argparse.Namespace:
    """The training options of ``config`` with ``extra_args`` (e.g. the recipe's --train_args) on top, as
    ``slap_train`` would parse them; of an experiment's config.yaml (every option, as ESPnet's trainer writes it,
    with ``required`` among them), its options as they are, as ESPnet's ``build_model_from_file`` reads them.
    A fresh parser each call: ESPnet's --config sets the parser's defaults."""
    written = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    if isinstance(written, dict) and "required" in written:
        if extra_args:
            raise ValueError(f"{config} is an experiment's config.yaml: no options go on top of it ({extra_args})")
        return argparse.Namespace(**written)
    return SLAPTask.get_parser().parse_args(["--config", str(config), *extra_args])


@dataclass
class RecipeSettings:
    """What a recipe must agree with: ``fs`` (Hz) of the front end, the tokenizer (``token_type``, ``bpemodel``:
    a sentencepiece model file or a Hugging Face tokenizer directory, ``token_list``), and the feature
    normalisation (``normalize``, e.g. global_mvn, and its ``stats_file``), and ``max_epoch`` (which a longer run
    may raise: stage 5 continues a training then)."""

    fs: int
    token_type: str
    bpemodel: str
    token_list: str
    normalize: str
    stats_file: str
    max_epoch: int

    @classmethod
    def of(cls, args: argparse.Namespace) -> "RecipeSettings":
        return cls(
            fs=SLAPTask.sample_rate(args),
            token_type=args.token_type or "",
            bpemodel=SLAPTask.tokenizer_path(args) or "",  # for an hf_transformer without one: its model dir
            token_list=args.token_list if isinstance(args.token_list, str) else "",
            normalize=args.normalize or "",
            stats_file=str((args.normalize_conf or {}).get("stats_file", "")),
            max_epoch=args.max_epoch,
        )

    def lines(self) -> str:
        """``name<TAB>value`` lines, for the shell to read."""
        return "".join(f"{name}\t{value}\n" for name, value in vars(self).items())


# What stage 4's statistics (speech and text shapes, feature mean and variance) depend on, beside the data and the
# tokenizer (their own stages' markers).
FEATURE_KEYS = ("frontend", "frontend_conf", "preprocessor_conf", "cleaner", "use_preprocessor")
# What training does not depend on (or what other markers cover): where files are (the data, tokenizer and
# statistics have their own stages' markers), how it is run (devices, workers, logging) and how its epochs are
# chosen afterwards (stage 6). Everything else changes the model trained.
NOT_TRAINING_KEYS = frozenset("""
    config print_config output_dir resume max_epoch dry_run collect_stats write_collected_feats
    train_data_path_and_name_and_type valid_data_path_and_name_and_type train_shape_file valid_shape_file
    token_list bpemodel best_model_criterion keep_nbest_models nbest_averaging_interval ngpu num_workers
    local_rank multiprocessing_distributed unused_parameters log_level log_interval num_att_plot use_tensorboard
    use_wandb use_matplotlib create_graph_in_tensorboard detect_anomaly max_cache_size valid_max_cache_size
    max_cache_fd num_cache_chunks cudnn_enabled cudnn_benchmark
    """.split())


def training_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The parsed options training depends on (``NOT_TRAINING_KEYS`` and ``dist_*``/``wandb_*`` left out; the
    statistics file's path too: stage 4's marker stands for its contents)."""
    options = {
        key: value
        for key, value in vars(args).items()
        if key not in NOT_TRAINING_KEYS and not key.startswith(("dist_", "wandb_"))
    }
    options["normalize_conf"] = {k: v for k, v in (args.normalize_conf or {}).items() if k != "stats_file"}
    return options


def option_lines(args: argparse.Namespace) -> str:
    """What the markers of stages 4 and 5 record of the options: ``feature:<key><TAB><JSON>`` lines of the
    options stage 4's statistics depend on (``FEATURE_KEYS``), ``train:<key><TAB><JSON>`` of those training
    depends on (``training_options``); keys sorted, JSON on one line (what JSON cannot hold by its repr)."""
    features = {key: vars(args)[key] for key in FEATURE_KEYS}
    return "".join(
        f"{kind}:{key}\t{json.dumps(value, sort_keys=True, default=repr)}\n"
        for kind, options in (("feature", features), ("train", training_options(args)))
        for key, value in sorted(options.items())
    )


# The config keys that name files an inference needs: (the key, the nested key or None).
PATH_KEYS: Tuple[Tuple[str, Optional[str]], ...] = (
    ("token_list", None),
    ("bpemodel", None),
    ("normalize_conf", "stats_file"),
    ("text_encoder_conf", "model_name_or_path"),
)


def needed_paths(config: Dict[str, Any]) -> List[Tuple[str, Optional[str], str]]:
    """(key, nested key, value) of each relative path in ``config`` that an inference reads: the tokenizer's
    files, the normalisation statistics when ``normalize`` is global_mvn, a local text-encoder directory (a
    Hugging Face hub name such as ``roberta-base`` is no path: it is left as it is)."""
    found = []
    for key, nested in PATH_KEYS:
        value = config.get(key) if nested is None else (config.get(key) or {}).get(nested)
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            continue
        if key == "normalize_conf" and config.get("normalize") != "global_mvn":
            continue
        if key == "text_encoder_conf" and "/" not in value:
            continue
        found.append((key, nested, value))
    return found


def localize_paths(config_path: Path, out_path: Path) -> List[str]:
    """Writes ``config_path`` to ``out_path`` with its relative paths (``needed_paths``) made absolute, each read
    relative to the nearest directory above the config where it exists (the recipe whose experiment wrote it),
    never relative to the current directory; returns ``"key: value"`` of those found nowhere (nothing written
    then)."""
    config_path = Path(config_path).resolve()
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    missing = []
    for key, nested, value in needed_paths(config):
        found = next((base / value for base in config_path.parents if (base / value).exists()), None)
        if found is None:
            missing.append(f"{key if nested is None else f'{key}.{nested}'}: {value}")
        elif nested is None:
            config[key] = str(found)
        else:
            config[key][nested] = str(found)
    if not missing:
        Path(out_path).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return missing
