"""Warnings that training is not learning: SLAP's projections collapsed to a point (``collapse_warning``), or
validation retrieval staying at chance (``chance_warning``, which also sees a collapse the first cannot: with
BatchNorm in the projectors their spread is kept up whether or not they carry meaning)."""

import math
from typing import Dict, List, Optional, Sequence, Tuple

# A collapse warning when std_audio or std_text (metrics/inbatch.py: the mean per-dimension std of the
# L2-normalised projections, ~1/sqrt(D) when they are spread over the sphere) stays under this fraction of
# 1/sqrt(D) for COLLAPSE_EPOCHS training epochs in a row. For embeddings z = normalize(m + e) around a common
# direction m, std * sqrt(D) is about the sine of their angle to m, and their mean pairwise cosine about
# 1 - (std * sqrt(D))^2: at 0.1 it is 0.99, the clips (or captions) are practically one point and retrieval is
# left to noise. One low epoch is no sign: training may start that concentrated and spread out (the default
# mini_synth recipe logs 0.014, 0.010, 0.014, 0.021, ... in its first epochs, threshold 0.0125).
COLLAPSE_FRACTION = 0.1
COLLAPSE_EPOCHS = 3

# A chance warning when validation in-batch R@1 (r1_a2t and r1_t2a together: on SLAP's predictions, CLAP's
# embeddings) averaged over the last CHANCE_EPOCHS validations stays under CHANCE_FACTOR x its chance level (the
# mean of 1/B over the validation batches). Replayed (bench/replay_chance_warning.py) on the train.logs of the 86
# runs of issue 23's studies (77 on mini_synth, 9 on gm_render; 32 validation clips in batches of 16, chance 0.0625;
# bench/README.md, "The chance warning replayed on these runs"), it warns at every epoch from 10 to 30 in the 4
# runs that collapsed (lambda 0 or 1),
# in some of epochs 10-20 of 25 of the 30 runs with the old tiny SLAP heads (which stayed near chance that long
# before learning), and once or twice in 3 of the other 52 (CLAP at batch 128 and SLAP at 16 x 8 accumulation: 2
# optimizer steps an epoch; lambda 0.2), never in a run of the shipped tiny configs as shipped. Over 5 epochs it
# also fired at epoch 5 in runs about to learn. With 20 figures over 32 clips the average's noise at chance is about
# 0.01, so 1.5 x chance (0.094) is 3 of its standard deviations above it.
CHANCE_FACTOR = 1.5
CHANCE_EPOCHS = 10
# Above this chance level (batches of 1: R@1 is always 1) the in-batch R@1 tells nothing.
CHANCE_MAX = 0.5


def collapse_warning(epoch: int, history: List[Dict[str, float]], dim: int) -> Optional[str]:
    """The warning when std_audio / std_text of each of the last COLLAPSE_EPOCHS training epochs (``history``,
    oldest first, ``epoch`` the last) is under COLLAPSE_FRACTION / sqrt(dim)."""
    threshold = COLLAPSE_FRACTION / math.sqrt(dim)
    recent = history[-COLLAPSE_EPOCHS:]
    if len(recent) < COLLAPSE_EPOCHS:
        return None
    low = [name for name in recent[-1] if all(name in stds and stds[name] < threshold for stds in recent)]
    if not low:
        return None
    figures = ", ".join(
        f"{name} {', '.join(f'{stds[name]:.4f}' for stds in recent)} "
        f"(mean cosine of two of them ~{1 - recent[-1][name] ** 2 * dim:.3f})"
        for name in low
    )
    return (
        f"epoch {epoch}: possible collapse in the last {COLLAPSE_EPOCHS} epochs: {figures}, under {threshold:.4f} = "
        f"{COLLAPSE_FRACTION} / sqrt({dim}) (1/sqrt({dim}) = {1 / math.sqrt(dim):.3f} when the normalised "
        "projections are spread): the embeddings are nearly one point. If valid r1_* stay at chance, the model "
        "has collapsed: try a larger batch, a tau closer to 1, a lower learning rate, or CLAP (conf/train_clap.yaml)"
    )


def inbatch_chance(batch_sizes: Sequence[float]) -> float:
    """The expected in-batch R@1 of a random ranking, aggregated as ESPnet aggregates a stat (weighted by batch
    size): sum_i B_i * (1 / B_i) / sum_i B_i = (number of batches) / (number of utterances)."""
    return len(batch_sizes) / sum(batch_sizes)


def chance_warning(epoch: int, history: List[Tuple[float, float]]) -> Optional[str]:
    """The warning when the validation R@1 of each of the last CHANCE_EPOCHS validations (``history``: (mean of
    r1_a2t and r1_t2a, chance level) oldest first, ``epoch`` the last), averaged, is under CHANCE_FACTOR x chance."""
    recent = history[-CHANCE_EPOCHS:]
    if len(recent) < CHANCE_EPOCHS or any(chance > CHANCE_MAX for _, chance in recent):
        return None
    r1 = sum(value for value, _ in recent) / len(recent)
    chance = sum(level for _, level in recent) / len(recent)
    if r1 >= CHANCE_FACTOR * chance:
        return None
    return (
        f"epoch {epoch}: validation retrieval at chance for the last {CHANCE_EPOCHS} epochs: in-batch R@1 "
        f"(mean of r1_a2t and r1_t2a) {', '.join(f'{value:.3f}' for value, _ in recent)}, average {r1:.3f}, under "
        f"{CHANCE_FACTOR} x chance ({chance:.3f}): the model is not matching clips with their captions. If it stays "
        "there, it has not learned or has collapsed (a spread std_* does not rule that out when the projectors have "
        "BatchNorm): try a lower learning rate, tau closer to 1, lambda_inter away from 0 and 1, or CLAP "
        "(conf/train_clap.yaml)"
    )
