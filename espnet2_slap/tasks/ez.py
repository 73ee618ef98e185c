"""Training SLAP and CLAP from Python with ESPnet-EZ (``espnetez``, shipped with ESPnet): ``task="slap"``.

ESPnet-EZ finds a task by name in one module-level table, ``espnetez.task.TASK_CLASSES``, which
``get_ez_task`` reads at each call (``ez.Trainer``, ``ez.from_yaml``), and offers no other way to add one.
Importing this module adds the entry ``"slap"`` to that table in this process (:func:`register`; ESPnet's files
on disk are left as they are), the way ``tasks/slap.py`` adds the ``lazy_sound`` data type to ESPnet's table at
import. The one task trains either model: the config's ``model`` (``slap`` or ``clap``) chooses::

    from espnet2_slap.tasks import ez as slap_ez  # first: registers "slap" (and keeps ESPnet's imports offline)
    import espnetez as ez

    config = slap_ez.config_from_yaml("conf/tuning/train_slap_tiny.yaml", bpemodel=..., token_list=...)
    trainer = ez.Trainer(
        task="slap", train_config=config, output_dir="exp/ez", stats_dir="exp/ez/stats", ngpu=0,
        # Kaldi data dirs (wav.scp, text) ...
        data_info=slap_ez.KALDI_DATA_INFO, train_dump_dir="data/train", valid_dump_dir="data/valid",
        # ... or in-memory (waveform or audio path, caption) pairs:
        # train_dataset=slap_ez.from_pairs(train_pairs, config, train=True),
        # valid_dataset=slap_ez.from_pairs(valid_pairs, config, train=False),
    )
    trainer.collect_stats()  # shapes (and global_mvn statistics) into stats_dir, as slap.sh's stage 4
    trainer.train()  # output_dir: checkpoints, config.yaml, averaged models, as stage 5

What differs from the command line (``python -m espnet2_slap.bin.slap_train``):

- One configuration serves both of EZ's steps, where slap.sh gives each its own options (``--normalize none`` to
  collect statistics, then ``--normalize_conf stats_file=<stats_dir>/train/feats_stats.npz``). The registered
  class, :class:`EZSLAPTask`, does both itself: ``collect_stats()`` builds the model without its normalisation
  (whose statistics that step writes), and ``train()`` reads them from beside the shape files EZ passes it
  (``<stats_dir>/train``) unless ``normalize_conf`` names a ``stats_file``; config.yaml records the file.
- A custom dataset is not preprocessed by ESPnet-EZ: the task class it makes for datasets has no preprocessor
  (its ``build_preprocess_fn`` returns None: EZ expects the dataset to give what the model takes). :func:`preprocessed`
  and :func:`from_pairs` wrap a dataset in SLAPTask's own :class:`SLAPPreprocessor` (crop, caption choice and
  tokenization, bad-file skipping), built from the same configuration. EZ keeps the task's collate function,
  :class:`SkipBadAudioCollateFn`, for either kind of data.
- ``ez.from_yaml("slap", path)`` works too, but reads the defaults it starts from on this process's command
  line (ESPnet's ``get_default_config`` parses ``sys.argv``): a script with options of its own would hand them
  to ESPnet's parser. :func:`config_from_yaml` parses the config file alone.
"""

import argparse
import copy
import os
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Dict, Sequence, Tuple, Union

import numpy as np
from espnet2.tasks.abs_task import AbsTask
from espnet2.train.dataset import AbsDataset
from espnetez.dataset import ESPnetEZDataset
from espnetez.task import TASK_CLASSES

from espnet2_slap.tasks.slap import SLAPTask
from espnet2_slap.train.lazy_sound import AudioFileRef

TASK_NAME = "slap"
# ez.Trainer's data_info for Kaldi data dirs: {data name: (file in train_dump_dir / valid_dump_dir, ESPnet type)}.
# lazy_sound reads only the crop of each file; "sound" (whole files) and "kaldi_ark" (feats.scp-style arks) work too.
KALDI_DATA_INFO = {"speech": ("wav.scp", "lazy_sound"), "text": ("text", "text")}
STATS_FILE = "feats_stats.npz"


def collected_stats_file(args: argparse.Namespace) -> Path:
    """``<stats_dir>/train/feats_stats.npz``: ESPnet-EZ's ``train()`` passes the shape files that its
    ``collect_stats()`` wrote there as ``train_shape_file``, and the statistics are beside them."""
    for shape_file in args.train_shape_file:
        stats = Path(shape_file).parent / STATS_FILE
        if stats.exists():
            return stats
    raise FileNotFoundError(
        f"normalize global_mvn needs the statistics of collect_stats(): no {STATS_FILE} beside the training "
        f"shape files {list(args.train_shape_file)}; run trainer.collect_stats() first, or give normalize_conf "
        "stats_file"
    )


class EZSLAPTask(SLAPTask):
    """SLAPTask as ESPnet-EZ runs it: the normalisation handled across EZ's two steps (module docstring)."""

    @classmethod
    def build_model(cls, args: argparse.Namespace):
        if args.collect_stats and args.normalize is not None:
            # collect_feats gives the front end's features, before normalisation: the statistics it is to read
            # are what this step writes. A copy: EZ's train() runs the same arguments with the normalisation.
            args = copy.copy(args)
            args.normalize = None
        elif not args.collect_stats and args.normalize == "global_mvn" and "stats_file" not in args.normalize_conf:
            args.normalize_conf = {**args.normalize_conf, "stats_file": str(collected_stats_file(args))}
        return super().build_model(args)


def register(name: str = TASK_NAME) -> type:
    """Add :class:`EZSLAPTask` to ESPnet-EZ's task table under ``name`` (this process only); again is a no-op,
    a name that another task holds is an error. Returns the class."""
    held = TASK_CLASSES.get(name)
    if held is not None and held is not EZSLAPTask:
        raise ValueError(f"ESPnet-EZ already has a task {name!r}: {held.__module__}.{held.__qualname__}")
    TASK_CLASSES[name] = EZSLAPTask
    return EZSLAPTask


register()


def config_from_yaml(path: Union[str, Path], **overrides: Any) -> Dict[str, Any]:
    """``ez.Trainer``'s ``train_config`` from a training config file: every option of SLAPTask, the file's
    values over the defaults (an option the task does not know is an error), then ``overrides`` (e.g.
    ``bpemodel``, ``token_list``, ``max_epoch``). Like ``ez.from_yaml`` without reading ``sys.argv``."""
    config = vars(EZSLAPTask.get_parser().parse_args(["--config", str(path)]))
    for key in AbsTask.exclude_opts():
        if key != "ngpu":
            config.pop(key, None)
    config.update(overrides)
    return config


def as_namespace(train_config: Union[Dict[str, Any], argparse.Namespace]) -> argparse.Namespace:
    return train_config if isinstance(train_config, argparse.Namespace) else argparse.Namespace(**train_config)


class PreprocessedDataset(AbsDataset):
    """An ESPnet-EZ custom dataset, ``dataset[uid] -> (uid, {"speech": ..., "text": caption})``, whose items go
    through ``preprocess`` (SLAPTask's :class:`SLAPPreprocessor`): ``speech`` a waveform at the front end's rate
    (float, or 16-bit integer samples; (S,) or (S, C)) or an :class:`AudioFileRef` (read crop only, its rate
    checked, a bad file skipped), ``text`` one caption line (several captions separated by ``|||``)."""

    def __init__(self, dataset: AbsDataset, preprocess: Callable):
        self.dataset = dataset
        self.preprocess = preprocess

    def has_name(self, name) -> bool:
        return self.dataset.has_name(name)

    def names(self) -> Tuple[str, ...]:
        return tuple(self.dataset.names())

    def __getitem__(self, uid) -> Tuple[str, Dict[str, np.ndarray]]:
        key, data = self.dataset[uid]
        return key, self.preprocess(key, dict(data))

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} items, {type(self.preprocess).__name__})"


def preprocessed(
    dataset: AbsDataset, train_config: Union[Dict[str, Any], argparse.Namespace], train: bool
) -> PreprocessedDataset:
    """``dataset`` (e.g. an ``ESPnetEZDataset``) through the preprocessor that ``train_config`` makes for
    training (``train=True``: random crop and caption) or validation (centred crop, first caption)."""
    preprocess = EZSLAPTask.build_preprocess_fn(as_namespace(train_config), train)
    if preprocess is None:
        raise ValueError("use_preprocessor is false: a dataset without the preprocessor gives token ids itself")
    return PreprocessedDataset(dataset, preprocess)


def speech_of(pair: Sequence) -> Union[np.ndarray, AudioFileRef]:
    """The audio of a (waveform or audio file path, caption) pair, as the preprocessor takes it."""
    audio = pair[0]
    if isinstance(audio, (str, os.PathLike)):
        return AudioFileRef(str(audio), None)
    return np.asarray(audio)


def from_pairs(
    pairs: Sequence[Sequence], train_config: Union[Dict[str, Any], argparse.Namespace], train: bool
) -> PreprocessedDataset:
    """An ESPnet-EZ custom dataset of (waveform or audio file path, caption) pairs (ids "0", "1", ...), through
    SLAPTask's preprocessor (:func:`preprocessed`). Waveforms must be at the front end's rate."""
    return preprocessed(ESPnetEZDataset(pairs, {"speech": speech_of, "text": itemgetter(1)}), train_config, train)
