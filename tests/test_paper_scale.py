"""The paper-scale configurations (egs/TEMPLATE/slap1/conf/train_{slap,clap}.yaml) build on CPU with random
initialisation and take one training step; their parameter counts are what the closing notes report."""

import pytest
import torch
from conftest import REPO
from random_batch import random_batch

from espnet2_slap.tasks.slap import SLAPTask

PAPER_CONF = REPO / "egs" / "TEMPLATE" / "slap1" / "conf"
ROBERTA_BASE = 124_645_632  # RobertaModel with pooler, vocabulary 50265


def build(tmp_path, name: str):
    args = SLAPTask.get_parser().parse_args(
        ["--config", str(PAPER_CONF / f"{name}.yaml"), "--output_dir", str(tmp_path / "exp")]
    )
    torch.manual_seed(0)
    return args, SLAPTask.build_model(args)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train_slap", "train_clap"])
def test_paper_scale_model_builds_counts_and_steps(tmp_path, name):
    args, model = build(tmp_path, name)
    counts = SLAPTask.parameter_counts(model)
    print(name, {k: f"{v / 1e6:.2f}M" for k, v in counts.items()})
    assert counts["text encoder"] == ROBERTA_BASE
    assert model.audio_tower.encoder.output_size() == 1024  # HTS-AT base
    assert model.audio_tower.projector[-1].out_features == 512
    online = counts["total"] - counts["EMA targets (no gradient)"]
    assert counts["trainable"] == online
    if name == "train_slap":
        assert counts["EMA targets (no gradient)"] == sum(
            counts[k] for k in ("audio encoder", "audio projector", "text encoder", "text projector")
        )
        assert counts["predictors"] == 2 * (512 * 4096 + 4096 + 4096 * 512 + 512)

    (optimizer,) = SLAPTask.build_optimizers(args, model)
    model.train()
    batch = random_batch(2, 480000, 32, 50265, torch.Generator().manual_seed(0))
    loss, stats, _ = model(**batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    optimizer.step()
    if name == "train_slap":
        assert int(model.ema_updates) == 1
