#!/usr/bin/env python3
"""Hand a trained SLAP/CLAP model to transformers users: a ``ClapModel`` directory.

    python -m espnet2_slap.bin.slap_export --format hf --train_config exp/clap/config.yaml \\
        --model_file exp/clap/valid.r1_t2a.ave.pth exp/clap/hf

then ``transformers.ClapModel.from_pretrained("exp/clap/hf")`` gives this model's embeddings, and
``transformers.pipeline("zero-shot-audio-classification", model="exp/clap/hf")`` runs. The directory holds
config.json and model.safetensors, the ClapFeatureExtractor of the model's front end (preprocessor_config.json),
the tokenizer, and espnet2_slap_export.json (what the export carries, the source files, and the largest
difference between its embeddings and ours, checked before anything is written: one clip of the model's length
through our front end and model, and through the saved ClapFeatureExtractor and ClapModel; one caption through
our preprocessor and through the saved tokenizer).

CLAP exports exactly (encoders, projections, temperature; it has no predictor, so --space prediction is refused
with --space projection to use). SLAP exports its projection space: its predictions do not fit ClapModel's
two-layer projection (--space prediction is refused). Models ClapModel cannot hold (a
conv audio encoder, a non-RoBERTa text encoder, a normalize layer, other heads, a sentencepiece tokenizer) are
refused with what does not fit. Differences that remain on the transformers side: ClapFeatureExtractor pads a
clip shorter than the model's length by repeating whole copies and silence where we repeat frames, and takes
a random crop of a longer one where espnet2_slap.inference averages windows.
"""

import argparse
import logging
from pathlib import Path

from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="Output directory")
    parser.add_argument("--format", choices=["hf"], default="hf", help="hf: a transformers ClapModel directory")
    parser.add_argument("--train_config", type=Path, required=True, help="config.yaml of the training")
    parser.add_argument("--model_file", type=Path, required=True, help="*.pth to export")
    parser.add_argument(
        "--space",
        choices=["projection", "prediction"],
        default="projection",
        help="the embedding space the export carries: projection (CLAP's, and SLAP's projectors); SLAP's "
        "predictions cannot be expressed by ClapModel and are refused",
    )
    parser.add_argument(
        "--tokenizer", default=None, help="tokenizer directory (default: the training's --bpemodel or text model dir)"
    )
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_export", cmd)
    args = get_parser().parse_args(cmd)
    from espnet2_slap.evaluation.identity import file_sha256
    from espnet2_slap.inference import load_trained_model
    from espnet2_slap.models.slap import SLAPModel
    from espnet2_slap.models.transformers_clap import export_clap
    from espnet2_slap.tasks.slap import SLAPTask

    train_args, model = load_trained_model(args.train_config, args.model_file)
    if args.space == "prediction" and not isinstance(model, SLAPModel):
        raise SystemExit(
            f"slap_export: --space prediction: {type(model).__name__} has no predictor; its projections are its "
            "embeddings: export --space projection"
        )
    if args.space == "prediction":
        raise SystemExit(
            "slap_export: --space prediction cannot be exported: SLAP's predictions (projector then predictor, "
            "four Linear layers) do not fit ClapModel's two-layer projection; export --space projection (SLAP's "
            "projections also retrieve, with a small drop, see the paper's Table 3)"
        )
    tokenizer = args.tokenizer or SLAPTask.tokenizer_path(train_args)
    if train_args.token_type != "hugging_face" and args.tokenizer is None:
        raise SystemExit(
            f"slap_export: the model uses --token_type {train_args.token_type}; ClapModel needs the RoBERTa "
            "tokenizer of a hugging_face model (give it with --tokenizer if it exists)"
        )
    if tokenizer is None or not Path(tokenizer).is_dir():
        raise SystemExit(f"slap_export: tokenizer directory {tokenizer} not found; give it with --tokenizer")
    note = dict(
        model=train_args.model,
        train_config=str(args.train_config),
        model_file=str(args.model_file),
        model_file_sha256=file_sha256(args.model_file),
    )
    preprocessor = SLAPTask.build_preprocess_fn(train_args, train=False)  # its tokenisation, checked on export
    try:
        export_clap(model, str(tokenizer), args.out, note, None if preprocessor is None else preprocessor.tokenize)
    except ValueError as e:
        raise SystemExit(f"slap_export: {e}")
    logging.info(f"load it with transformers.ClapModel.from_pretrained({str(args.out)!r})")


if __name__ == "__main__":
    main()
