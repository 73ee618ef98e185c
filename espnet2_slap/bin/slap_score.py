#!/usr/bin/env python3
"""Score extracted embeddings, one task a call: retrieval, zero-shot classification, modality gap, MLP probe
(the scorers of espnet2_slap/evaluation/scorers.py, which stage 8 runs all at once: slap_results).

An embedding directory holds ``<name>.npy`` (float32, (N, D)) and ``<name>.ids`` (N lines, one id per line, in
row order), as slap_embed writes them, e.g. ``audio_projection.npy`` / ``audio_projection.ids``. Kaldi-style inputs:
  --text2audio   "<text_id> <audio_id>" per line (several captions per clip); default: <emb_dir>/text2audio when
                 it is there (slap_embed writes it beside the embeddings), else text ids = audio ids
  --labels       "<audio_id> <label>" (single-label) or "<audio_id> [<label1> <label2> ...]" (--multi_label; an
                 id alone: no positive label); embedded clips it does not list are not scored (their count is given)
  --known        "<audio_id> <label> ..." the labels known for a clip (OpenMIC's mask); others do not count
  --classes      one class name per line (default: the sorted labels seen in --labels)
Zero-shot prompts (the paper's four: "{}", "{} music", "this sounds like {}", "A {} track", ``_`` in a class name
read as a space) are embedded with the model (--train_config and --model_file, or --packed_model), or read from
--prompt_dir (``slap_embed --prompts CLASSES`` writes them: ids ``<prompt_index>:<class>``). Every subcommand
writes --out_json and --out_md (a Markdown table); --device runs the scoring there (cpu, cuda, cuda:N).

    python -m espnet2_slap.bin.slap_score retrieval --emb_dir exp/slap_x/embed/test \\
        --out_json retrieval.json --out_md retrieval.md
    python -m espnet2_slap.bin.slap_score zeroshot --emb_dir exp/slap_x/embed/test --audio_name audio_prediction \\
        --labels dump/raw/test/utt2genre --packed_model exp/slap_x/packed_model.zip --out_json z.json --out_md z.md
"""

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Dict

from espnet2_slap.evaluation.prompt_embeddings import embed_prompts, read_prompt_embeddings
from espnet2_slap.evaluation.readers import (
    UnmappedTextIds,
    class_list,
    load_embeddings,
    read_captioned,
    read_ids,
    read_labelled,
)
from espnet2_slap.evaluation.report import write_task_results
from espnet2_slap.evaluation.scorers import score_gap, score_probe, score_retrieval, score_zero_shot
from espnet2_slap.utils.cli import start_logging


def kind_of(name: str, modality: str) -> str:
    """``audio_prediction`` -> ``prediction``: the kind of an embedding file slap_embed named."""
    prefix = f"{modality}_"
    if not name.startswith(prefix):
        raise ValueError(f"{name}: not an {modality} embedding file of slap_embed ({prefix}<kind>)")
    return name[len(prefix) :]


def retrieval(args) -> Dict:
    """Retrieval of the kind of --audio_name; --text2audio defaults to the one slap_embed wrote in --emb_dir."""
    kind = kind_of(args.audio_name, "audio")
    if kind_of(args.text_name, "text") != kind:
        raise ValueError(f"--audio_name {args.audio_name} and --text_name {args.text_name} are of different kinds")
    text2audio = args.text2audio
    if text2audio is None and (args.emb_dir / "text2audio").is_file():
        text2audio = args.emb_dir / "text2audio"
        logging.info(f"no --text2audio given: using {text2audio}, written beside the embeddings")
    try:
        embeddings = read_captioned(args.emb_dir, [kind], text2audio)
    except UnmappedTextIds as e:
        raise SystemExit(
            f"slap_score retrieval: {args.emb_dir}: {e}; give --text2audio FILE ('<text_id> <audio_id>' lines, "
            "as slap_embed writes them to <emb_dir>/text2audio)"
        ) from None
    return score_retrieval(embeddings, args.block_size, args.device)[kind]


def model_prompts(args, classes) -> Dict:
    """{prompt: (C, D)} of the kind of --audio_name, embedded with the model of the options."""
    from espnet2_slap.checkpoints.packing import unpack_model
    from espnet2_slap.inference import AudioTextModel

    kind = kind_of(args.audio_name, "audio")
    with tempfile.TemporaryDirectory() as tmp:
        config, model_file = args.train_config, args.model_file
        if args.packed_model is not None:
            config, model_file = unpack_model(args.packed_model, tmp)
        model = AudioTextModel.from_pretrained(config, model_file, args.device)
        return {p: e[kind] for p, e in embed_prompts(model.embed_text, classes).items()}


def zeroshot(args) -> Dict:
    sources = [args.prompt_dir is not None, args.packed_model is not None, args.model_file is not None]
    if sum(sources) != 1 or (args.model_file is None) != (args.train_config is None):
        raise SystemExit(
            "zeroshot: give one source of prompt embeddings: --prompt_dir DIR (slap_embed --prompts), "
            "--train_config CONFIG --model_file PTH, or --packed_model ZIP"
        )
    classes = class_list(args.labels, args.classes)
    clips = read_labelled(args.emb_dir, args.audio_name, args.labels, classes, args.multi_label, args.known)
    if args.prompt_dir is not None:
        name = args.prompt_name or f"prompt_{kind_of(args.audio_name, 'audio')}"
        prompts = read_prompt_embeddings(args.prompt_dir, name, classes)
    else:
        prompts = model_prompts(args, classes)
    return score_zero_shot(clips, prompts, classes, args.multi_label, args.select, args.device)


def gap(args) -> Dict:
    _, audio = load_embeddings(args.emb_dir, args.audio_name)
    _, text = load_embeddings(args.emb_dir, args.text_name)
    return score_gap(audio, text, args.seed, args.png, f"{args.audio_name} vs {args.text_name}", args.device)


def probe(args) -> Dict:
    classes = class_list(args.labels, args.classes)
    clips = read_labelled(args.emb_dir, args.feature_name, args.labels, classes, args.multi_label, args.known)
    fit, stop, test = (
        clips.subset(read_ids(path), str(path)) for path in (args.train_ids, args.valid_ids, args.test_ids)
    )
    return score_probe(fit, stop, test, len(classes), args.multi_label, args.patience, args.seed, args.device)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "retrieval": (retrieval, "A->T and T->A R@1/5/10, MdNR, MNR (exact, blocked)"),
        "zeroshot": (zeroshot, "zero-shot accuracy or ROC-AUC / mAP / mAR per prompt and the best"),
        "gap": (gap, "modality gap: linear separability, centroid distance, UMAP picture"),
        "probe": (probe, "MLP probe (512 hidden, early stopping) on frozen features"),
    }
    for name, (func, help_text) in commands.items():
        p = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        p.set_defaults(func=func)
        p.add_argument("--emb_dir", type=Path, required=True, help="directory of <name>.npy / <name>.ids")
        p.add_argument("--out_json", type=Path, required=True)
        p.add_argument("--out_md", type=Path, required=True)
        p.add_argument("--device", default="cpu", help="where the scores are computed: cpu, cuda or cuda:N")
        if name in ("retrieval", "gap", "zeroshot"):
            p.add_argument("--audio_name", default="audio_projection", help="audio embedding file name")
        if name in ("retrieval", "gap"):
            p.add_argument("--text_name", default="text_projection", help="text embedding file name")
        if name in ("zeroshot", "probe"):
            p.add_argument("--labels", type=Path, required=True, help="'<audio_id> <label> [<label> ...]' lines")
            p.add_argument("--classes", type=Path, help="class names, one a line (default: sorted labels seen)")
            p.add_argument("--multi_label", action="store_true")
            p.add_argument("--known", type=Path, help="'<audio_id> <label> ...' known labels (multi-label mask)")
        if name in ("gap", "probe"):
            p.add_argument("--seed", type=int, default=0)
    sub.choices["retrieval"].add_argument(
        "--text2audio",
        type=Path,
        help="'<text_id> <audio_id>' lines (default: <emb_dir>/text2audio when there, else text ids = audio ids)",
    )
    sub.choices["retrieval"].add_argument("--block_size", type=int, default=256, help="queries per score block")
    z = sub.choices["zeroshot"]
    z.add_argument(
        "--prompt_dir", type=Path, help="prompt embeddings (slap_embed --prompts): ids <prompt_index>:<class>"
    )
    z.add_argument("--prompt_name", help="prompt embedding file name (default: prompt_<kind of --audio_name>)")
    z.add_argument("--train_config", type=Path, help="with --model_file: embed the prompts with this model")
    z.add_argument("--model_file", type=Path, help="the model's *.pth")
    z.add_argument("--packed_model", type=Path, help="or a packed model zip (slap_pack) to embed the prompts with")
    z.add_argument("--select", help="metric picking the best prompt (default: accuracy or mAP)")
    sub.choices["gap"].add_argument("--png", type=Path, help="where the UMAP picture goes (none when not given)")
    sub.choices["probe"].add_argument("--feature_name", required=True, help="frozen feature file name")
    for split in ("train", "valid", "test"):
        sub.choices["probe"].add_argument(f"--{split}_ids", type=Path, required=True, help="audio ids, one a line")
    sub.choices["probe"].add_argument("--patience", type=int, default=10, help="early-stopping patience (epochs)")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_score", cmd)
    args = get_parser().parse_args(cmd)
    results = args.func(args)
    write_task_results(results, args.out_json, args.out_md, f"slap_score {args.command}: {args.emb_dir}")


if __name__ == "__main__":
    main()
