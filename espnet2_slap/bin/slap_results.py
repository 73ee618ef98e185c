#!/usr/bin/env python3
"""Stage 8 of the recipe: score a trained model's test-set embeddings and write <exp>/RESULTS.md and results.json.

    python -m espnet2_slap.bin.slap_results --exp exp/slap_train_slap_tiny --dumpdir dump/raw --test_sets test \\
        --model_file valid.r1_t2a.ave.pth [--score_config conf/score.yaml] [--label_files utt2instrument utt2mode]

What is scored is a plan (espnet2_slap/evaluation/plan.py): --score_config, a YAML file (a recipe's
conf/score.yaml), with --label_files adding single-label zero-shot tasks. For each test set, from the embeddings
stage 7 wrote in <exp>/embed/<set> (slap_embed's format):
  - the numbers of clips and captions scored;
  - retrieval A->T and T->A (R@1/5/10, MdNR, MNR; several captions per clip) on each embedding kind after the
    encoders (SLAP: predictions and projections; CLAP: projections), with the chance level;
  - zero-shot classification for each label file of the plan the set has (<dumpdir>/<set>/<labels>): accuracy
    (single-label), or macro ROC-AUC / mAP and mAR (multi-label, optionally with a known-label mask), with the
    paper's four prompts embedded by the model (best one reported), on the retrieval kind;
  - the modality gap on predictions (SLAP) and projections: linear separability, centroid distance, a UMAP picture of
    the space retrieval uses (SLAP: predictions; none with `umap: false` in the score config)
    (<exp>/embed/<set>/umap.png);
  - MLP probes whose scored split is this set (fit and early stop on two other embedded sets).
The embeddings must be those of --model_file, its config and the test set's data list as they are now (the
identity slap_embed records in <exp>/embed/<set>/identity.json): otherwise nothing is written and the error says
to run stage 7 again.
"""

import argparse
from pathlib import Path

from espnet2_slap.evaluation.plan import read_plan
from espnet2_slap.evaluation.results import Stage8
from espnet2_slap.inference import AudioTextModel
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="Training directory (config.yaml, embed/)")
    parser.add_argument("--model_file", required=True, help="The *.pth in --exp that stage 7 used")
    parser.add_argument("--dumpdir", type=Path, required=True, help="Where the test sets' data dirs are")
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--score_config", type=Path, help="What to score (YAML; see above), e.g. conf/score.yaml")
    parser.add_argument("--label_files", nargs="*", default=[], help="Single-label files of the test sets")
    parser.add_argument("--device", default="cpu", help="Where scores and prompts are computed: cpu, cuda, cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the probes and the modality-gap classifier")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_results", cmd)
    args = get_parser().parse_args(cmd)
    plan = read_plan(args.score_config, args.label_files)
    config, model_file = args.exp / "config.yaml", args.exp / args.model_file
    Stage8(
        args.exp, args.model_file, args.dumpdir, args.test_sets, plan,
        lambda: AudioTextModel.from_pretrained(config, model_file, args.device), args.device, args.seed,
    ).run()  # fmt: skip


if __name__ == "__main__":
    main()
