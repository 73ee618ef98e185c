#!/usr/bin/env python3
"""Compare trained experiments: one table (and a figure) of their stage-8 figures, mean and spread over seeds.

    python -m espnet2_slap.bin.slap_compare exp/slap_b64_s0 exp/slap_b64_s1 exp/clap_b64_s0 exp/clap_b64_s1 \\
        [--test_set test] [--out compare] [--x effective_batch] [--series model] [--metric r10_a2t ...] [--title T]

Each EXP_DIR needs config.yaml and results.json (stage 8) with --test_set; model_selection.json and train.log
are read when there. Runs are grouped by the directory name without a trailing _s<digits> / _seed<digits>
(seeds from config.yaml's seed); the runs of a group must differ in nothing else (config.yaml but for the seed
and output paths, the model file, the selection rule), otherwise this stops with the differing keys.

Per group: R@1 and R@10, A->T and T->A, on the retrieval embedding (SLAP: prediction, CLAP: projection), R@10 on
the projections, the modality gap (linear separability %, centroid distance) on both (older results.json: the
projections only), the runs with a "possible collapse" or "at chance" warning in train.log, the epochs trained;
each as the mean and sample std over the seeds. Metric keys (for --metric; the table's labels work too): r1_a2t
r1_t2a r10_a2t r10_t2a r10_a2t_proj r10_t2a_proj gap_sep gap_dist gap_sep_proj gap_dist_proj collapse epochs_trained.

Fields (--x, --series, and the table's columns where groups differ): model batch_size accum_grad
effective_batch (batch_size x accum_grad) lambda_inter tau tau_schedule projector_batchnorm predictor_batchnorm
predictor_hidden lr weight_decay scheduler predictor_lr_scale max_epoch fresh_batches model_file selection_rule
(config.yaml's, with the models' and ESPnet's defaults where absent; SLAP-only ones are empty for CLAP).

Writes, under --out:
  compare.md    a line on the test set, embeddings and grouping, then one Markdown table (printed too)
  compare.png   with --x: a subplot per metric against --x, a line per --series value, error bars = std over
                seeds (log2 axis for batch sizes); without: a grouped bar chart over the groups
  compare.json  {"test_set", "grouping", "embeddings": {model: kind}, "metrics": {key: label},
                 "differing_fields": [field], "other_differing_keys": [config key], "same_test_counts": bool,
                 "groups": [{"label", "model", "embedding", "fields": {field: value}, "n", "seeds": [seed],
                             "runs": [{"exp", "seed", "collapse_warnings", "epochs_trained", "model_selection",
                                       "counts"}],
                             "metrics": {key: {"mean", "std", "n", "values": [per seed]}}}],
                 "plot": {"kind": "lines", "x", "series", "metrics", "skipped": [group],
                          "lines": [{"series", "groups", "x", "mean": {key: [..]}, "std": {key: [..]}}]}
                         or {"kind": "bars", "metrics", "groups"}}
"""

import argparse
import sys
from pathlib import Path

from espnet2_slap.evaluation.compare import FIELDS, CompareError, compare
from espnet2_slap.evaluation.compare_report import write_comparison
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dirs", nargs="+", type=Path, metavar="EXP_DIR", help="Training directories")
    parser.add_argument("--test_set", default="test", help="The test set of results.json to compare on")
    parser.add_argument("--out", type=Path, default=Path("compare"), help="Output directory")
    parser.add_argument("--x", choices=FIELDS, metavar="FIELD", help="Plot the metrics against this field (else: bars)")
    parser.add_argument(
        "--series", choices=FIELDS, default="model", metavar="FIELD", help="A line per value of this field"
    )
    parser.add_argument("--metric", nargs="+", help="Metrics to plot (default: R@10 A->T, T->A, gap separability)")
    parser.add_argument("--title", help="The figure's title")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_compare", cmd)
    args = get_parser().parse_args(cmd)
    try:
        comparison = compare(args.exp_dirs, args.test_set, args.x, args.series, args.metric)
        sys.stdout.write(write_comparison(comparison, args.out, args.title))
    except CompareError as e:
        sys.exit(f"slap_compare: error: {e}")


if __name__ == "__main__":
    main()
