"""SLAPTask: trains SLAP and CLAP audio-text embedding models with ESPnet's trainer."""

import argparse
import copy
import dataclasses
import logging
from inspect import signature
from typing import Callable, Collection, Dict, List, Optional, Tuple

import numpy as np
import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.asr.specaug.specaug import SpecAug
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.layers.utterance_mvn import UtteranceMVN
from espnet2.tasks.abs_task import AbsTask, IteratorOptions
from espnet2.torch_utils.initialize import initialize
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool, str_or_none
from typeguard import typechecked

from espnet2_slap.checkpoints.init_param import safe_init_param
from espnet2_slap.encoders.abs_audio_encoder import AbsAudioEncoder
from espnet2_slap.encoders.abs_text_encoder import AbsTextEncoder
from espnet2_slap.encoders.conv_audio_encoder import ConvAudioEncoder
from espnet2_slap.encoders.hf_transformer_text_encoder import HFTransformerTextEncoder
from espnet2_slap.encoders.htsat_audio_encoder import HTSATAudioEncoder
from espnet2_slap.encoders.transformer_text_encoder import TransformerTextEncoder
from espnet2_slap.layers.logmel import LogMelFrontend
from espnet2_slap.models.clap import CLAPModel
from espnet2_slap.models.from_checkpoint import initialize_from_checkpoint
from espnet2_slap.models.slap import SLAPModel
from espnet2_slap.models.two_tower import TwoTowerModel
from espnet2_slap.train.fresh_batches import FreshBatchSampler
from espnet2_slap.train.lazy_sound import register_lazy_sound
from espnet2_slap.train.model_selection import LAST_EPOCHS, MIN_VALID_UTTERANCES
from espnet2_slap.train.param_groups import scale_lr_of
from espnet2_slap.train.preprocessor import TOKEN_TYPES, SLAPPreprocessor
from espnet2_slap.train.skip_bad_audio import SkipBadAudioCollateFn
from espnet2_slap.train.trainer import SLAPTrainer, skipped_summary

register_lazy_sound()

frontend_choices = ClassChoices(
    name="frontend",
    classes=dict(logmel=LogMelFrontend),
    type_check=AbsFrontend,
    default="logmel",
)
specaug_choices = ClassChoices(
    name="specaug",
    classes=dict(specaug=SpecAug),
    type_check=AbsSpecAug,
    default=None,
    optional=True,
)
normalize_choices = ClassChoices(
    name="normalize",
    classes=dict(global_mvn=GlobalMVN, utterance_mvn=UtteranceMVN),
    type_check=AbsNormalize,
    default=None,
    optional=True,
)
audio_encoder_choices = ClassChoices(
    name="audio_encoder",
    classes=dict(conv=ConvAudioEncoder, htsat=HTSATAudioEncoder),
    type_check=AbsAudioEncoder,
    default="conv",
)
text_encoder_choices = ClassChoices(
    name="text_encoder",
    classes=dict(hf_transformer=HFTransformerTextEncoder, transformer=TransformerTextEncoder),
    type_check=AbsTextEncoder,
    default="transformer",
)
model_choices = ClassChoices(
    name="model",
    classes=dict(slap=SLAPModel, clap=CLAPModel),
    type_check=AbsESPnetModel,
    default="slap",
)


def count_parameters(module: Optional[torch.nn.Module]) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def validation_size_warning(args: argparse.Namespace) -> Optional[str]:
    """The warning for a validation set too small for its best_model_criterion (None when it is large enough, or
    when the criterion ranks nothing: ``valid epoch max``, the last epochs, slap.sh --model_selection last)."""
    lists = getattr(args, "valid_data_path_and_name_and_type", None) or []
    if not lists or not getattr(args, "best_model_criterion", None):
        return None
    if tuple(args.best_model_criterion[0]) == LAST_EPOCHS:
        return None
    with open(lists[0][0], encoding="utf-8") as f:
        num_valid = sum(1 for line in f if line.strip())
    if num_valid >= MIN_VALID_UTTERANCES:
        return None
    phase, key, _ = args.best_model_criterion[0]
    how = (
        f"moves in steps of 1/{num_valid} = {1 / num_valid:.3g}"
        if key != "loss"
        else f"is a mean over {num_valid} clips"
    )
    nbest = max(args.keep_nbest_models) if isinstance(args.keep_nbest_models, list) else args.keep_nbest_models
    return (
        f"the validation set ({lists[0][0]}) has {num_valid} utterances, fewer than {MIN_VALID_UTTERANCES}: "
        f"{phase} {key} (best_model_criterion) {how}, so the {nbest} best epochs that are averaged "
        "(keep_nbest_models) are picked by chance as much as by merit. Give the validation set more clips, or "
        "average the last epochs (the recipe's --model_selection last) or score a fixed one (--inference_model "
        "<N>epoch.pth)"
    )


class SLAPTask(AbsTask):
    """Data: ``speech`` (audio; ``lazy_sound``, read crop only, ``sound`` or ``kaldi_ark``) and ``text``
    (captions; ``text``)."""

    num_optimizers: int = 1
    class_choices_list = [
        frontend_choices,
        specaug_choices,
        normalize_choices,
        audio_encoder_choices,
        text_encoder_choices,
        model_choices,
    ]
    trainer = SLAPTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        group.add_argument(
            "--token_type",
            type=str,
            default="bpe",
            choices=TOKEN_TYPES,
            help="bpe: sentencepiece model (--bpemodel) and --token_list; "
            "hugging_face: a local tokenizer directory given as --bpemodel",
        )
        group.add_argument("--token_list", type=str_or_none, default=None, help="Token list (bpe only)")
        group.add_argument(
            "--bpemodel",
            type=str_or_none,
            default=None,
            help="sentencepiece model, or local tokenizer dir (hugging_face; default: the hf_transformer's "
            "model_name_or_path)",
        )
        group.add_argument(
            "--cleaner",
            type=str_or_none,
            default=None,
            choices=[None, "tacotron", "jaconv", "vietnamese"],
            help="Text cleaner applied to captions",
        )
        group.add_argument(
            "--init",
            type=lambda x: str_or_none(x.lower()),
            default=None,
            choices=["chainer", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", None],
            help="The initialization method",
        )

        group.add_argument(
            "--fresh_batches",
            type=str2bool,
            default=False,
            help="Redraw the contents of the training batches every epoch from --seed and the epoch (same "
            "number and sizes of batches; resume draws them again): new in-batch negatives each epoch. "
            "ESPnet's samplers make the batches once and only reshuffle their order",
        )

        group.add_argument(
            "--predictor_lr_scale",
            type=float,
            default=1.0,
            help="SLAP: the predictors' learning rate is optim_conf lr times this (their own parameter group)",
        )

        group = parser.add_argument_group(description="Preprocess related")
        group.add_argument("--use_preprocessor", type=str2bool, default=True, help="Apply preprocessing")
        group.add_argument(
            "--preprocessor_conf",
            action=NestedDictAction,
            default=dict(),
            help="Options of SLAPPreprocessor: crop_seconds (training crop length, random in training and "
            "centred in validation), caption_delimiter (default '|||'), max_text_length (default 128), "
            "short_audio ('error' or 'pad'), bad_audio ('skip': log, count and skip an utterance whose "
            "lazy_sound file is missing, unreadable, truncated or at another rate; 'error'). Defaults: "
            + str(get_default_kwargs(SLAPPreprocessor)),
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        # --init_param: ESPnet's main_worker reads those files with torch.load(weights_only=False), which runs any
        # code a file names, through the module-level name load_pretrained_model of espnet2.tasks.abs_task, and
        # has no hook of its own. That name is replaced, only while our main_worker runs (in every process it
        # starts: each runs this method), by the same loading through our safe reader (checkpoints/init_param.py). So
        # the files are read where ESPnet reads them: after the model is cast to --train_dtype, frozen, given its
        # adapter and its optimizer, in training only (not with --collect_stats or --dry_run). Loading them in
        # build_model instead would load them before those steps, and also when a trained model is rebuilt from
        # its config.yaml (inference), which records --init_param.
        with safe_init_param(args.init_param):
            super().main_worker(args)
        if args.collect_stats:
            logging.info(
                f"statistics collected; utterances skipped for a bad audio file: {skipped_summary() or 'none'}"
            )

    @classmethod
    def build_sequence_iter_factory(
        cls, args: argparse.Namespace, iter_options: IteratorOptions, mode: str
    ) -> AbsIterFactory:
        """ESPnet's factory; with --fresh_batches, for training, its sampler is a :class:`FreshBatchSampler` of
        the batches it built (built unsharded, on every utterance, and shared per rank by the sampler)."""
        if not (iter_options.train and args.fresh_batches):
            return super().build_sequence_iter_factory(args, iter_options, mode)
        factory = super().build_sequence_iter_factory(args, dataclasses.replace(iter_options, distributed=False), mode)
        rank, world_size = (
            (torch.distributed.get_rank(), torch.distributed.get_world_size()) if iter_options.distributed else (0, 1)
        )
        factory.sampler = FreshBatchSampler(factory.sampler.batches, rank, world_size)
        logging.info(f"[{mode}] fresh batches every epoch: {factory.sampler}")
        return factory

    @classmethod
    def sample_rate(cls, args: argparse.Namespace) -> int:
        """The front end's sampling rate: its ``fs`` option or that option's default."""
        frontend_class = frontend_choices.get_class(args.frontend)
        return int(args.frontend_conf.get("fs", signature(frontend_class).parameters["fs"].default))

    @classmethod
    @typechecked
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable[
        [Collection[Tuple[str, Dict[str, np.ndarray]]]],
        Tuple[List[str], Dict[str, torch.Tensor]],
    ]:
        return SkipBadAudioCollateFn(
            CommonCollateFn(float_pad_value=0.0, int_pad_value=-1), name="train" if train else "valid"
        )

    @classmethod
    @typechecked
    def build_preprocess_fn(
        cls, args: argparse.Namespace, train: bool
    ) -> Optional[Callable[[str, Dict[str, np.array]], Dict[str, np.ndarray]]]:
        if not args.use_preprocessor:
            return None
        conf = dict(args.preprocessor_conf)
        crop_seconds = conf.pop("crop_seconds", None)
        if crop_seconds is not None:
            conf["crop_samples"] = int(round(float(crop_seconds) * cls.sample_rate(args)))
        conf.setdefault("fs", cls.sample_rate(args))
        return SLAPPreprocessor(
            train=train,
            token_type=args.token_type,
            token_list=args.token_list,
            bpemodel=cls.tokenizer_path(args),
            text_cleaner=args.cleaner,
            **conf,
        )

    @staticmethod
    def tokenizer_path(args: argparse.Namespace) -> Optional[str]:
        """--bpemodel, or for hugging_face tokens without it, the hf_transformer's own model directory."""
        if args.bpemodel is None and args.token_type == "hugging_face" and args.text_encoder == "hf_transformer":
            return args.text_encoder_conf.get("model_name_or_path")
        return args.bpemodel

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech", "text")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ()

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> AbsESPnetModel:
        # 1. Vocabulary (bpe): the recipe's token list
        vocab_size = None
        if isinstance(args.token_list, str):
            with open(args.token_list, encoding="utf-8") as f:
                args.token_list = [line.rstrip() for line in f]
        if args.token_list is not None:
            vocab_size = len(args.token_list)

        # 2. Audio front end: log-mel, SpecAug, normalisation
        frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
        specaug = None if args.specaug is None else specaug_choices.get_class(args.specaug)(**args.specaug_conf)
        normalize = (
            None if args.normalize is None else normalize_choices.get_class(args.normalize)(**args.normalize_conf)
        )

        # 3. Encoders
        audio_encoder = audio_encoder_choices.get_class(args.audio_encoder)(
            input_size=frontend.output_size(), **args.audio_encoder_conf
        )
        text_encoder_class = text_encoder_choices.get_class(args.text_encoder)
        text_encoder_conf = dict(args.text_encoder_conf)
        if "vocab_size" in signature(text_encoder_class).parameters:
            if vocab_size is None:
                raise ValueError(f"text_encoder {args.text_encoder} needs --token_list (its vocabulary)")
            text_encoder_conf["vocab_size"] = vocab_size
        text_encoder = text_encoder_class(**text_encoder_conf)

        # 4. Model
        model_class = model_choices.get_class(args.model)
        if model_class is SLAPModel:
            cls.resolve_tau_total_steps(args)
        model_conf = dict(args.model_conf)
        init = model_conf.pop("init", None)
        model = model_class(
            frontend=frontend,
            specaug=specaug,
            normalize=normalize,
            audio_encoder=audio_encoder,
            text_encoder=text_encoder,
            **model_conf,
        )

        # 5. Initialisation: --init, then model_conf init {path, parts} (a LAION-CLAP release, a transformers
        # ClapModel, ...; models/from_checkpoint.py). SLAP's targets copy the context towers when training starts.
        if args.init is not None:
            initialize(model, args.init)
        if init is not None:
            unknown = sorted(set(init) - {"path", "parts"})
            if "path" not in init or unknown:
                raise ValueError(f"model_conf init takes path and parts, got {sorted(init)}")
            initialize_from_checkpoint(model, init["path"], init.get("parts") or [])
        cls.log_parameter_counts(model)
        return model

    @staticmethod
    def without_init(args: argparse.Namespace) -> argparse.Namespace:
        """A copy of a training's arguments without the checkpoints it started from (encoders'
        init_checkpoint, model_conf init): to rebuild a trained model whose weights are loaded next, where those
        files may be absent."""
        args = copy.deepcopy(args)
        for conf in (args.audio_encoder_conf, args.text_encoder_conf):
            conf.pop("init_checkpoint", None)
        args.model_conf.pop("init", None)
        return args

    @classmethod
    def resolve_tau_total_steps(cls, args: argparse.Namespace) -> None:
        """A linear/cosine tau schedule spans training: its length in optimizer steps is either given
        (model_conf tau_total_steps) or derived from --max_epoch, --num_iters_per_epoch and --accum_grad."""
        conf = args.model_conf
        if conf.get("tau_schedule", "constant") == "constant" or conf.get("tau_total_steps") is not None:
            return
        if getattr(args, "num_iters_per_epoch", None) is None:
            raise ValueError(
                f"tau_schedule {conf['tau_schedule']} needs model_conf tau_total_steps "
                "(optimizer steps over all of training) or --num_iters_per_epoch to derive it"
            )
        conf["tau_total_steps"] = args.max_epoch * args.num_iters_per_epoch // args.accum_grad
        logging.info(f"tau schedule over {conf['tau_total_steps']} optimizer steps")

    @staticmethod
    def parameter_counts(model: AbsESPnetModel) -> Dict[str, int]:
        """Parameters per part of a SLAP/CLAP model; ``trainable`` excludes the EMA targets and frozen ones."""
        counts = {
            "audio encoder": count_parameters(model.audio_tower.encoder),
            "audio projector": count_parameters(model.audio_tower.projector),
            "text encoder": count_parameters(model.text_tower.encoder),
            "text projector": count_parameters(model.text_tower.projector),
            "predictors": count_parameters(model.audio_predictor) + count_parameters(model.text_predictor),
            "EMA targets (no gradient)": sum(
                count_parameters(getattr(model, name, None)) for name in ("audio_target", "text_target")
            ),
            "total": count_parameters(model),
        }
        counts["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return counts

    @classmethod
    def log_parameter_counts(cls, model: AbsESPnetModel) -> None:
        lines = [f"  {name:<26} {n / 1e6:9.3f} M" for name, n in cls.parameter_counts(model).items()]
        logging.info(f"{type(model).__name__} parameters:\n" + "\n".join(lines))

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module) -> List[torch.optim.Optimizer]:
        """ESPnet's optimizer, plus the model's ``after_optimizer_step`` as a post-hook of its ``step``: SLAP's
        EMA update, CLAP's in-place clamp of its temperature. It also logs ``validation_size_warning``.

        ESPnet's trainer calls ``optimizer.step()`` once per --accum_grad micro-batches, not at all when the
        gradient norm is non-finite, and through the AMP GradScaler, which skips ``step`` on inf/nan
        gradients; a post-hook therefore runs exactly when the weights moved (SLAP's targets move then). Under
        DDP every rank steps the same averaged gradients, so targets stay identical across ranks.
        """
        optimizers = super().build_optimizers(args, model)
        warning = validation_size_warning(args)  # here: in training only, once ESPnet has set up logging
        if warning:
            logging.warning(warning)
        heads = (getattr(model, "audio_predictor", None), getattr(model, "text_predictor", None))
        predictors = [m for m in heads if m is not None]
        scale = getattr(args, "predictor_lr_scale", 1.0)
        if scale != 1.0:
            if not predictors:
                raise ValueError(f"--predictor_lr_scale {scale}: model {args.model} has no predictors (SLAP has)")
            moved = scale_lr_of(optimizers[0], predictors, scale)
            logging.info(f"the predictors ({moved} tensors) learn at {scale} x the learning rate of the rest")
        if isinstance(model, TwoTowerModel):
            optimizers[0].register_step_post_hook(lambda optimizer, opt_args, opt_kwargs: model.after_optimizer_step())
        return optimizers
