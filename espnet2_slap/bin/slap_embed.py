#!/usr/bin/env python3
"""Audio and caption embeddings of a Kaldi data dir with a trained SLAP/CLAP model (stage 7), and the zero-shot
prompt embeddings of a class list.

    python -m espnet2_slap.bin.slap_embed --train_config exp/slap/config.yaml \\
        --model_file exp/slap/valid.r1_t2a.ave.pth --data_dir data/test --output_dir exp/slap/embed/test
    # the same in 4 jobs, then the call that merges them (it computes whatever a job left undone):
    python -m espnet2_slap.bin.slap_embed ... --job 2 --nj 4
    # prompt embeddings (ids <prompt_index>:<class>) for slap_score zeroshot --prompt_dir:
    python -m espnet2_slap.bin.slap_embed --train_config ... --model_file ... --prompts genre.classes \\
        --output_dir exp/slap/prompts/genre

Writes to --output_dir, for each modality (audio from wav.scp, text from text) and each kind (representation,
projection and, for SLAP, prediction): <modality>_<kind>.npy (N, D) float32, <modality>_<kind>.ids (one id a line,
in row order), <modality>_<kind>.ark/.scp (Kaldi matrices), ``text2audio`` ("<caption id> <audio id>", caption ids
``<utt id>-cap<i>``), and ``identity.json`` (what made them: SHA-256 of the model file, config, data list and
audio files' sizes and times, chunk size). Work is saved every --chunk_size items under <output_dir>/chunks, each
chunk with its identity: a rerun reuses only chunks of the same model, config and data, so an interrupted run
resumes, and jobs (--job J --nj N) share the chunks. Audio files are read and resampled to the model's rate as
in training (espnet2_slap/audio/io.py); audio longer than the training crop is the mean over crop-length windows
(espnet2_slap/inference.py). With --prompts: prompt_<kind>.npy/.ids of the paper's four prompts with each class
(``_`` in a class name read as a space).
"""

import argparse
from pathlib import Path

from espnet2_slap.evaluation.embed import embed_data_dir, embed_prompt_file
from espnet2_slap.evaluation.readers import class_list
from espnet2_slap.inference import AudioTextModel
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_config", type=Path, required=True, help="config.yaml written by training")
    parser.add_argument("--model_file", type=Path, required=True, help="*.pth, e.g. the n-best average")
    parser.add_argument("--data_dir", type=Path, help="Kaldi data dir with wav.scp and/or text")
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--modalities", nargs="+", default=["audio", "text"], choices=["audio", "text"])
    parser.add_argument("--prompts", type=Path, help="a class list (one a line): embed the prompts of its classes")
    parser.add_argument("--batch_size", type=int, default=16, help="windows or captions per forward")
    parser.add_argument("--chunk_size", type=int, default=256, help="items between saved partial results")
    parser.add_argument("--job", type=int, help="with --nj: compute only this job's share of the chunks (1-based)")
    parser.add_argument("--nj", type=int, default=1, help="number of jobs sharing the data dir")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_embed", cmd)
    parser = get_parser()
    args = parser.parse_args(cmd)
    if (args.data_dir is None) == (args.prompts is None):
        parser.error("give --data_dir (embeddings of a data dir) or --prompts (prompt embeddings of a class list)")
    if args.job is not None and args.prompts is not None:
        parser.error("--job is for --data_dir")
    model = AudioTextModel.from_pretrained(args.train_config, args.model_file, args.device, args.batch_size, lazy=True)
    if args.prompts is not None:
        embed_prompt_file(model, class_list(args.prompts, args.prompts), args.output_dir)
        return
    embed_data_dir(
        model, args.train_config, args.model_file, args.data_dir, args.output_dir, args.modalities, args.chunk_size,
        args.job, args.nj,
    )  # fmt: skip


if __name__ == "__main__":
    main()
