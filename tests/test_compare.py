"""slap_compare (espnet2_slap/evaluation/compare.py, compare_report.py) on fake experiment directories:
config.yaml, results.json of both modality-gap shapes, train.log with and without a collapse warning,
model_selection.json. No training."""

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, run_module

from espnet2_slap.evaluation import compare as cmp
from espnet2_slap.evaluation import compare_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLLAPSE = (
    "[vm] 2026-01-01 00:00:00,000 (trainer:86) WARNING: epoch 7: possible collapse in the last 3 epochs: std_audio "
    "0.0010, 0.0010, 0.0010 (mean cosine of two of them ~1.000), under 0.0125 = 0.1 / sqrt(64)\n"
)
AT_CHANCE = (
    "[vm] 2026-01-01 00:00:00,000 (trainer:98) WARNING: epoch 5: validation retrieval at chance for the last 5 "
    "epochs: in-batch R@1 (mean of r1_a2t and r1_t2a) 0.031, 0.078, 0.062, 0.031, 0.016, average 0.044\n"
)


def recall(r1: float, r10: float) -> dict:
    return {"R@1": r1, "R@5": (r1 + r10) / 2, "R@10": r10, "MdNR": 5.0, "MNR": 7.0}


def make_exp(
    root: Path,
    name: str,
    model: str = "slap",
    seed: int = 0,
    batch_size: int = 16,
    accum_grad: int = 1,
    lr: float = 1e-3,
    r10=(70.0, 60.0),
    r1=(10.0, 8.0),
    gap: str = "new",
    warning: str = "",
    selection=None,
    model_conf=None,
) -> Path:
    """A fake ``<exp>``: config.yaml as ESPnet writes it (the keys compare reads), results.json on "test" with
    the ``gap`` shape ("new": per space, "old": projections only), train.log (with ``warning``, a line of it)."""
    exp = root / name
    exp.mkdir(parents=True)
    conf = {"projection_dim": 64, "predictor_hidden": 256, "tau": 0.99} if model == "slap" else {"projection_dim": 64}
    config = {
        "config": f"conf/{name}.yaml",
        "output_dir": f"exp/{name}",
        "seed": seed,
        "batch_size": batch_size,
        "accum_grad": accum_grad,
        "max_epoch": 10,
        "optim": "adam",
        "optim_conf": {"lr": lr, "weight_decay": 1e-6},
        "scheduler": None,
        "model": model,
        "model_conf": {**conf, **(model_conf or {})},
    }
    (exp / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    kind = "prediction" if model == "slap" else "projection"
    retrieval = {kind: {"A->T": recall(r1[0], r10[0]), "T->A": recall(r1[1], r10[1])}}
    retrieval["projection"] = retrieval.get("projection", {"A->T": recall(3.0, 30.0), "T->A": recall(4.0, 40.0)})
    retrieval["chance"] = {"A->T": recall(1.5, 15.0), "T->A": recall(1.5, 15.0)}
    projection_gap = {"separability": 90.0 + seed, "centroid_distance": 0.5 + seed / 10}
    if gap == "old":
        modality_gap = {**projection_gap, "umap": f"exp/{name}/embed/test/umap.png"}
    else:
        modality_gap = {"projection": projection_gap, "umap": {"space": kind, "png": "umap.png"}}
        if model == "slap":
            modality_gap["prediction"] = {"separability": 60.0 + seed, "centroid_distance": 0.2}
    counts = {"clips": 64, "captions": 128, "min_captions_per_clip": 2, "max_captions_per_clip": 2}
    results = {"test": {"counts": counts, "retrieval": retrieval, "modality_gap": modality_gap}, "other": {}}
    (exp / "results.json").write_text(json.dumps(results), encoding="utf-8")
    log = "".join(f"[vm] (trainer:394) INFO: {e}epoch results: [train] loss=1.0\n" for e in range(1, 9))
    (exp / "train.log").write_text(log + warning, encoding="utf-8")
    if selection is not None:
        (exp / "model_selection.json").write_text(json.dumps(selection), encoding="utf-8")
    return exp


def by_label(comparison: dict) -> dict:
    return {g["label"]: g for g in comparison["groups"]}


def test_groups_by_seed_with_means_stds_and_both_gap_shapes(tmp_path):
    exps = [
        make_exp(tmp_path, "slap_b16_s0", seed=0, r10=(70.0, 60.0), warning=COLLAPSE),
        make_exp(tmp_path, "slap_b16_s1", seed=1, r10=(72.0, 64.0), gap="old"),
        make_exp(tmp_path, "slap_b16_seed2", seed=2, r10=(74.0, 62.0)),
        make_exp(tmp_path, "clap_b16", model="clap", r10=(50.0, 52.0), gap="old"),
    ]
    comparison = cmp.compare(exps, "test")
    groups = by_label(comparison)
    assert list(groups) == ["slap_b16", "clap_b16"]
    slap, clap = groups["slap_b16"], groups["clap_b16"]
    assert (slap["n"], slap["seeds"], slap["embedding"]) == (3, [0, 1, 2], "prediction")
    r10 = slap["metrics"]["r10_a2t"]
    assert r10["values"] == [70.0, 72.0, 74.0]
    assert r10["mean"] == pytest.approx(72.0) and r10["std"] == pytest.approx(np.std([70, 72, 74], ddof=1))
    assert slap["metrics"]["r10_t2a"]["std"] == pytest.approx(2.0)
    assert slap["metrics"]["r10_a2t_proj"]["mean"] == pytest.approx(30.0)
    # the gap on the predictions: seed 1 has the older shape (projections only), so two values
    assert slap["metrics"]["gap_sep"]["values"] == [60.0, None, 62.0] and slap["metrics"]["gap_sep"]["n"] == 2
    assert slap["metrics"]["gap_sep_proj"]["values"] == [90.0, 91.0, 92.0]
    assert slap["metrics"]["collapse"]["values"] == [1.0, 0.0, 0.0]
    assert [r["collapse_warnings"] for r in slap["runs"]] == [1, 0, 0]
    assert slap["metrics"]["epochs_trained"]["mean"] == 8.0
    # CLAP, one run: retrieval on the projections, no std; its old-shape gap is the projections', so its own
    assert (clap["embedding"], clap["n"], clap["metrics"]["r10_a2t"]["std"]) == ("projection", 1, None)
    assert clap["metrics"]["gap_sep"]["mean"] == clap["metrics"]["gap_sep_proj"]["mean"] == 90.0
    assert clap["fields"]["lambda_inter"] is None and slap["fields"]["lambda_inter"] == 0.5  # SLAP's default
    assert "model" in comparison["differing_fields"] and "lr" not in comparison["differing_fields"]
    text = compare_report.markdown(comparison)
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 4 and table[0].startswith("| group | model | seeds | R@1 A->T")
    assert "| slap_b16 | slap | 0 1 2 | 10.00 ± 0.00 |" in table[2]
    assert "72.00 ± 2.00" in table[2] and "61.0 ± 1.4 (n=2)" in table[2] and "| 1/3 |" in table[2]
    assert "| clap_b16 | clap | 0 | 10.00 | 8.00 | 50.00 | 52.00 |" in table[3]
    assert "Test set `test`" in text and "CLAP projection, SLAP prediction" in text


def test_refuses_a_group_whose_configs_differ_beyond_the_seed(tmp_path):
    a = make_exp(tmp_path, "slap_b16_s0", seed=0)
    b = make_exp(tmp_path, "slap_b16_s1", seed=1, lr=1e-4)
    with pytest.raises(
        cmp.CompareError, match=r"group slap_b16: .*slap_b16_s0 and .*slap_b16_s1 differ in optim_conf.lr"
    ):
        cmp.compare([a, b])
    c = make_exp(tmp_path, "slap_b32_s0", seed=0, model_conf={"tau": 0.9})
    d = make_exp(tmp_path, "slap_b32_s1", seed=1)
    with pytest.raises(cmp.CompareError, match=r"differ in model_conf.tau \(model_conf.tau: 0.9 vs 0.99\)"):
        cmp.compare([c, d])
    e = make_exp(tmp_path, "slap_b64_s0", seed=3)
    f = make_exp(tmp_path, "slap_b64_s1", seed=3)
    with pytest.raises(cmp.CompareError, match="have the same seed 3"):
        cmp.compare([e, f])
    g = make_exp(tmp_path, "slap_b8_s0", seed=0, selection={"model_file": "valid.r1_t2a.ave.pth", "rule": "best3"})
    h = make_exp(tmp_path, "slap_b8_s1", seed=1, selection={"model_file": "valid.r1_t2a.best.pth", "rule": "best"})
    with pytest.raises(cmp.CompareError, match="differ in model_file, selection_rule"):
        cmp.compare([g, h])


def test_missing_files_and_test_set_name_the_directory(tmp_path):
    exp = make_exp(tmp_path, "slap_b16_s0")
    (exp / "results.json").unlink()
    with pytest.raises(cmp.CompareError, match=rf"{exp}: no results.json"):
        cmp.compare([exp])
    exp = make_exp(tmp_path, "slap_b16_s1", seed=1)
    with pytest.raises(cmp.CompareError, match=rf"{exp}: results.json has no test set 'eval'; it has: test, other"):
        cmp.compare([exp], "eval")
    (exp / "config.yaml").unlink()
    with pytest.raises(cmp.CompareError, match=rf"{exp}: no config.yaml"):
        cmp.compare([exp])


def test_x_effective_batch_series_model_orders_lines_and_rows(tmp_path):
    exps = [
        make_exp(tmp_path, "slap_b64_s0", seed=0, batch_size=32, accum_grad=2, r10=(80.0, 70.0)),
        make_exp(tmp_path, "slap_b64_s1", seed=1, batch_size=32, accum_grad=2, r10=(82.0, 72.0)),
        make_exp(tmp_path, "clap_b32", model="clap", batch_size=32, r10=(55.0, 50.0)),
        make_exp(tmp_path, "slap_b16", batch_size=16, r10=(60.0, 58.0)),
        make_exp(tmp_path, "clap_b16", model="clap", batch_size=16, r10=(45.0, 40.0)),
    ]
    comparison = cmp.compare(exps, x="effective_batch", series="model")
    assert [g["label"] for g in comparison["groups"]] == ["clap_b16", "clap_b32", "slap_b16", "slap_b64"]
    plot = comparison["plot"]
    assert plot["metrics"] == ["r10_a2t", "r10_t2a", "gap_sep"]
    assert [line["series"] for line in plot["lines"]] == ["clap", "slap"]
    assert [line["x"] for line in plot["lines"]] == [[16, 32], [16, 64]]
    assert plot["lines"][1]["mean"]["r10_a2t"] == [60.0, 81.0]
    assert plot["lines"][1]["std"]["r10_a2t"][0] is None
    assert plot["lines"][1]["std"]["r10_a2t"][1] == pytest.approx(np.std([80, 82], ddof=1))
    text = compare_report.write_comparison(comparison, tmp_path / "out", "batch")
    header = text.splitlines()[2]
    assert header.startswith("| group | model | batch_size | accum_grad | effective_batch | seeds |")
    assert (tmp_path / "out" / "compare.png").read_bytes()[:8] == PNG_SIGNATURE
    # two groups at one point of the plot: an error naming what else differs
    other = make_exp(tmp_path, "slap_b16_lr4", batch_size=16, lr=1e-4)
    with pytest.raises(cmp.CompareError, match=r"slap_b16 and slap_b16_lr4 are one point .* differ in lr"):
        cmp.compare([*exps, other], x="effective_batch")
    lines = cmp.compare([*exps[:2], exps[3], other], x="effective_batch", series="lr")["plot"]["lines"]
    assert [(line["series"], line["groups"]) for line in lines] == [
        (1e-4, ["slap_b16_lr4"]),
        (1e-3, ["slap_b16", "slap_b64"]),
    ]


def test_cli_writes_table_json_and_png(tmp_path):
    selection = {
        "model_file": "valid.r1_t2a.ave_3best.pth",
        "rule": "ave_3best",
        "criterion": ["valid", "r1_t2a", "max"],
        "epochs": [5, 7, 8],
        "values": [0.3, 0.4, 0.5],
        "epochs_trained": 9,
        "max_epoch": 10,
        "valid_utterances": 32,
        "reason": "test",
    }
    make_exp(tmp_path, "slap_b16_s0", seed=0, selection=selection)
    make_exp(tmp_path, "slap_b16_s1", seed=1, selection={**selection, "epochs": [6, 7, 8], "epochs_trained": 10})
    make_exp(tmp_path, "clap_b16_s0", model="clap", gap="old", warning=AT_CHANCE)
    exps = ["slap_b16_s0", "slap_b16_s1", "clap_b16_s0"]
    proc = run_module("espnet2_slap.bin.slap_compare", *exps, "--title", "fake", "--metric", "R@1 A->T", cwd=tmp_path)
    out = tmp_path / "compare"
    text = (out / "compare.md").read_text(encoding="utf-8")
    assert proc.stdout == text
    assert "| slap_b16 |" in text and "averaged epochs" in text and "s0: 5 7 8; s1: 6 7 8" in text
    assert "9.5 ± 0.7" in text  # epochs trained from model_selection.json
    data = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert data["plot"] == {"kind": "bars", "metrics": ["r1_a2t"], "groups": ["slap_b16", "clap_b16"]}
    assert data["groups"][0]["runs"][0]["model_selection"]["rule"] == "ave_3best"
    assert data["groups"][0]["fields"]["model_file"] == "valid.r1_t2a.ave_3best.pth"
    assert data["groups"][1]["metrics"]["collapse"]["values"] == [1.0]
    assert (out / "compare.png").read_bytes()[:8] == PNG_SIGNATURE
    proc = run_module("espnet2_slap.bin.slap_compare", "slap_b16_s0", "missing", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "slap_compare: error: missing: no such experiment directory" in proc.stderr


def test_defaults_match_the_models_the_task_and_torch():
    import torch

    from espnet2_slap.models.clap import CLAPModel
    from espnet2_slap.models.slap import SLAPModel
    from espnet2_slap.tasks.slap import SLAPTask

    slap = inspect.signature(SLAPModel).parameters
    assert {k: slap[k].default for k in cmp.SLAP_DEFAULTS} == cmp.SLAP_DEFAULTS
    for model in (SLAPModel, CLAPModel):
        assert inspect.signature(model).parameters["projector_batchnorm"].default is False
    parser = SLAPTask.get_parser()
    assert {k: parser.get_default(k) for k in cmp.ESPNET_DEFAULTS} == cmp.ESPNET_DEFAULTS
    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    classes["adadelta"] = torch.optim.Adadelta
    for name, (lr, weight_decay) in cmp.OPTIM_DEFAULTS.items():
        params = inspect.signature(classes[name]).parameters
        assert (params["lr"].default, params["weight_decay"].default) == (lr, weight_decay), name


def test_the_recipe_experiment_reads(tmp_path):
    """The real stage-8 output of the default recipe, when it is there (results.json of the older gap shape)."""
    exp = REPO / "egs" / "mini_synth" / "slap1" / "exp" / "slap_train_slap_tiny"
    if not (exp / "results.json").is_file():
        pytest.skip("the mini_synth recipe has not been run")
    group = cmp.compare([exp])["groups"][0]
    assert group["embedding"] == "prediction" and group["metrics"]["r10_a2t"]["mean"] is not None
    assert group["metrics"]["gap_sep_proj"]["n"] == 1
