"""The evaluation package through its command lines: stage 8's plan (single-label, multi-label and masked
zero-shot, probes), slap_score zeroshot on its own (prompts embedded by a model or by slap_embed --prompts),
stage 7 shared by jobs, and one audio reader for the Python API and stage 7."""

import json
import os
import shutil
import zipfile
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import yaml
from conftest import REPO, run_module
from test_embed_identity import save_model

from espnet2_slap.audio.io import read_mono, resample
from espnet2_slap.bin import slap_embed
from espnet2_slap.evaluation import readers
from espnet2_slap.evaluation.plan import ProbeTask, ScorePlan, ZeroShotTask, read_plan
from espnet2_slap.evaluation.results import Stage8
from espnet2_slap.inference import AudioTextModel
from espnet2_slap.metrics.zeroshot import BEST_LABEL
from espnet2_slap.prompts import PROMPTS


def embed(config, model_file, data_dir, out, *extra):
    """slap_embed in this process (its command line is tested below, and in test_recipe.py)."""
    args = ["--train_config", config, "--model_file", model_file, "--data_dir", data_dir, "--output_dir", out]
    slap_embed.main([str(a) for a in (*args, "--chunk_size", "4", *extra)])


def kaldi(path):
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


@pytest.fixture
def label_sets(corpus, tmp_path):
    """dump/{train,valid,test} copies of the corpus with a multi-label file (instrument and mode), a known-label
    mask (the mode unknown for every other clip), and their class list."""
    dump = tmp_path / "dump"
    for dset in ("train", "valid", "test"):
        d = shutil.copytree(corpus / dset, dump / dset)
        instrument, mode = kaldi(d / "utt2instrument"), kaldi(d / "utt2mode")
        (d / "utt2tags").write_text("".join(f"{u} {instrument[u]} {mode[u]}\n" for u in instrument))
        (d / "utt2known").write_text(
            "".join(f"{u} {instrument[u]}{'' if i % 2 else ' major minor'}\n" for i, u in enumerate(instrument))
        )
        (d / "tags.classes").write_text("piano\norgan\nflute\nstrings\nmajor\nminor\n")
    return dump


@pytest.fixture
def exp(tmp_path, bpe, label_sets):
    """A tiny model's exp dir with the embeddings of the three sets (stage 7)."""
    exp = tmp_path / "exp"
    config, model_file = save_model(exp, bpe, seed=1)
    for dset in ("train", "valid", "test"):
        embed(config, model_file, label_sets / dset, exp / "embed" / dset)
    return exp


def test_stage8_scores_every_task_of_the_plan(tmp_path, exp, label_sets):
    plan = tmp_path / "score.yaml"
    plan.write_text(
        yaml.safe_dump(
            {
                "modality_gap": False,  # UMAP takes long; stage 8's gap is in test_recipe.py
                "zero_shot": [
                    {"labels": "utt2tags", "classes": "tags.classes", "multi_label": True, "sets": ["test"]},
                    {"labels": "utt2tags", "classes": "tags.classes", "multi_label": True, "known": "utt2known"},
                ],
                "probe": [{"labels": "utt2instrument", "splits": ["train", "valid", "test"]}],
            }
        )
    )
    cmd = ["--exp", exp, "--dumpdir", label_sets, "--test_sets", "train", "valid", "test", "--model_file", "1epoch.pth"]
    run_module("espnet2_slap.bin.slap_results", *cmd, "--score_config", plan, "--label_files", "utt2mode", cwd=REPO)
    results = json.loads((exp / "results.json").read_text())
    assert set(results) == {"train", "valid", "test"}
    test = results["test"]
    assert set(test["zero_shot"]) == {"utt2mode", "utt2tags", "utt2tags (known: utt2known)"}
    assert set(results["train"]["zero_shot"]) == {"utt2mode", "utt2tags (known: utt2known)"}  # no "sets": all
    assert set(test["zero_shot"]["utt2tags"]["best"]) == {"ROC-AUC", "mAP", "mAR", "skipped_classes", "skipped_clips"}
    masked = test["zero_shot"]["utt2tags (known: utt2known)"]
    assert masked["known"] == "utt2known" and masked["clips"] == 8
    assert masked["best"] != test["zero_shot"]["utt2tags"]["best"]  # the mask changes what counts
    mode = test["zero_shot"]["utt2mode"]  # every prompt's figure, and the best of them chosen on this test set
    assert list(mode["per_prompt"]) == list(PROMPTS) and mode["best_label"] == BEST_LABEL
    assert mode["best"]["accuracy"] == max(m["accuracy"] for m in mode["per_prompt"].values())
    assert masked["best"]["mAP"] == max(m["mAP"] for m in masked["per_prompt"].values())
    probe = test["probe"]["utt2instrument"]
    assert probe["clips"] == {"fit": 32, "stop": 8, "test": 8} and 0 <= probe["test"]["accuracy"] <= 100
    md = (exp / "RESULTS.md").read_text()
    assert "### Zero-shot classification (accuracy %" in md and "| utt2mode | 2 | 50.0 |" in md
    assert all(f"| utt2mode | 2 | 50.0 | `{prompt}` | " in md for prompt in PROMPTS)
    label = "best prompt, chosen on the test set (paper's protocol; optimistic)"
    assert f"| utt2mode | 2 | 50.0 | {label}: `{mode['best_prompt']}` | {mode['best']['accuracy']:.2f} |" in md
    assert "### Zero-shot tagging (multi-label" in md and "| utt2tags (known: utt2known) | 6 | 8 | utt2known |" in md
    assert "### MLP probes on frozen embeddings" in md and "- utt2instrument (representation; fit train 32" in md


def test_stage8_reads_each_embedding_file_once_a_test_set(monkeypatch, exp, label_sets):
    """Counts, retrieval, the gap, zero-shot and the probes of a set share the arrays read once: the embeddings
    (np.load of each .npy) and the caption map."""
    reads = []  # (the set scored, Counter of the files read while scoring it)
    score_set, np_load, read_kaldi = Stage8.score_set, np.load, readers.read_kaldi

    def counted(read, suffixes):
        def wrapper(path, *args, **kwargs):
            if str(path).endswith(suffixes) and reads:
                reads[-1][1][path] += 1
            return read(path, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        Stage8, "score_set", lambda self, dset: reads.append((dset, Counter())) or score_set(self, dset)
    )
    monkeypatch.setattr(np, "load", counted(np_load, (".npy",)))
    monkeypatch.setattr(readers, "read_kaldi", counted(read_kaldi, ("text2audio",)))
    plan = ScorePlan(
        umap=False,
        zero_shot=[ZeroShotTask("utt2mode"), ZeroShotTask("utt2tags", "tags.classes", True, "utt2known")],
        probe=[ProbeTask("utt2instrument"), ProbeTask("utt2instrument", feature="prediction")],
    )
    config, model_file = exp / "config.yaml", exp / "1epoch.pth"
    load_model = lambda: AudioTextModel.from_pretrained(config, model_file)  # noqa: E731
    results = Stage8(exp, "1epoch.pth", label_sets, ["train", "test"], plan, load_model).run()
    assert set(results["test"]) == {"counts", "retrieval", "zero_shot", "modality_gap", "probe"}
    assert [dset for dset, _ in reads] == ["train", "test"]
    for dset, counts in reads:
        assert counts and set(counts.values()) == {1}, f"{dset}: {counts}"
    embed = exp / "embed"
    assert set(reads[1][1]) == {embed / "test/text2audio"} | {
        embed / d / f"{m}_{k}.npy" for d in ["test"] for m in ("audio", "text") for k in ("prediction", "projection")
    } | {embed / d / f"audio_{k}.npy" for d in ("train", "valid", "test") for k in ("representation", "prediction")}


def test_what_stage8_cannot_score_is_said_in_results(tmp_path, exp, label_sets):
    plan = tmp_path / "score.yaml"
    probe = {"labels": "utt2instrument", "splits": ["train", "other", "test"]}
    plan.write_text(yaml.safe_dump({"modality_gap": False, "probe": [probe]}))
    (label_sets / "valid/utt2mode").unlink()
    cmd = ["--exp", exp, "--dumpdir", label_sets, "--test_sets", "valid", "test", "--model_file", "1epoch.pth"]
    run_module("espnet2_slap.bin.slap_results", *cmd, "--score_config", plan, "--label_files", "utt2mode", cwd=REPO)
    md = (exp / "RESULTS.md").read_text()
    assert "- utt2instrument: not run: stage 7 did not embed other (add them to --test_sets)" in md
    assert f"- zero-shot utt2mode: not run: valid has no {label_sets / 'valid/utt2mode'}" in md
    assert "| utt2mode | 2 | 50.0 |" in md  # scored on test


def test_a_bad_score_config_names_its_file_and_key(tmp_path):
    plan = tmp_path / "score.yaml"
    plan.write_text("zero_shot:\n  - labels: utt2genre\n    multilabel: true\n")
    with pytest.raises(ValueError, match=r"score.yaml: zero_shot\[0\]: unknown key\(s\) \['multilabel'\]"):
        read_plan(plan, [])
    plan.write_text("probe:\n  - labels: utt2genre\n    splits: [train, test]\n")
    with pytest.raises(ValueError, match=r"probe\[0\] splits must be three sets"):
        read_plan(plan, [])


def test_zeroshot_prompts_from_the_model_or_from_slap_embed_agree(tmp_path, exp, label_sets):
    config, model_file = exp / "config.yaml", exp / "1epoch.pth"
    prompts = tmp_path / "prompts"
    run_module(
        "espnet2_slap.bin.slap_embed", "--train_config", config, "--model_file", model_file,
        "--prompts", label_sets / "test/tags.classes", "--output_dir", prompts, cwd=REPO,
    )  # fmt: skip
    assert (prompts / "prompt_prediction.ids").read_text().splitlines()[:2] == ["0:piano", "0:organ"]
    common = [
        "--emb_dir",
        exp / "embed/test",
        "--audio_name",
        "audio_prediction",
        "--labels",
        label_sets / "test/utt2tags",
    ]
    common += ["--classes", label_sets / "test/tags.classes", "--multi_label", "--known", label_sets / "test/utt2known"]
    scores = []
    for source in (["--prompt_dir", prompts], ["--train_config", config, "--model_file", model_file]):
        out = tmp_path / f"z{len(scores)}"
        run_module(
            "espnet2_slap.bin.slap_score", "zeroshot", *common, *source, "--out_json", out.with_suffix(".json"),
            "--out_md", out.with_suffix(".md"), cwd=REPO,
        )  # fmt: skip
        scores.append(json.loads(out.with_suffix(".json").read_text()))
    assert scores[0]["best"] == pytest.approx(scores[1]["best"], abs=1e-4)
    assert scores[0]["classes"] == ["piano", "organ", "flute", "strings", "major", "minor"]
    proc = run_module(
        "espnet2_slap.bin.slap_score", "zeroshot", *common, "--out_json", "x", "--out_md", "y", cwd=REPO, check=False
    )
    assert proc.returncode != 0 and "give one source of prompt embeddings" in proc.stderr


def test_stage7_jobs_share_the_chunks_and_give_one_jobs_embeddings(tmp_path, bpe, corpus):
    config, model_file = save_model(tmp_path / "exp", bpe, seed=1)
    one, shared = tmp_path / "one", tmp_path / "shared"
    embed(config, model_file, corpus / "test", one)
    for job in ("1", "2"):
        embed(config, model_file, corpus / "test", shared, "--job", job, "--nj", "2")
    chunks = sorted(p.name for p in (shared / "chunks").glob("*.npz"))
    assert chunks == ["audio_000000.npz", "audio_000001.npz"] + [f"text_{i:06d}.npz" for i in range(4)]
    assert not (shared / "identity.json").exists()  # the jobs write chunks only; the last call merges
    embed(config, model_file, corpus / "test", shared)
    for name in ("audio_prediction", "audio_representation", "text_projection"):
        np.testing.assert_array_equal(np.load(one / f"{name}.npy"), np.load(shared / f"{name}.npy"))
    assert (one / "text2audio").read_text() == (shared / "text2audio").read_text()


def test_python_api_and_stage7_embed_a_file_at_another_rate_alike(tmp_path, bpe, corpus):
    """The same 22.05-kHz file (the model is at 16 kHz) through AudioTextModel and through slap_embed: one reader
    and one resampler (soxr, as stage 2), so the same embedding."""
    config, model_file = save_model(tmp_path / "exp", bpe, seed=1)
    wave, rate = read_mono(kaldi(corpus / "test/wav.scp")["synth_test_00000"].strip())
    path = tmp_path / "clip22k.wav"
    sf.write(path, resample(wave, rate, 22050), 22050, subtype="FLOAT")
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"clip {path}\n")
    embed(config, model_file, data, tmp_path / "emb", "--modalities", "audio")
    api = AudioTextModel.from_pretrained(config, model_file).embed_audio([str(path)])
    for kind in ("representation", "projection", "prediction"):
        np.testing.assert_allclose(np.load(tmp_path / f"emb/audio_{kind}.npy"), api[kind], atol=1e-5, rtol=0)


def test_slap_score_zeroshot_with_the_packed_default_model_gives_stage8s_figure(tmp_path, mini_synth, packed_model):
    exp = mini_synth / "exp/slap_train_slap_tiny"
    stage8 = json.loads((exp / "results.json").read_text())["test"]["zero_shot"]["utt2instrument"]
    out = tmp_path / "z"
    run_module(
        "espnet2_slap.bin.slap_score", "zeroshot", "--emb_dir", exp / "embed/test", "--audio_name",
        "audio_prediction", "--labels", mini_synth / "dump/raw/test/utt2instrument", "--packed_model", packed_model,
        "--out_json", out.with_suffix(".json"), "--out_md", out.with_suffix(".md"), cwd=REPO,
    )  # fmt: skip
    alone = json.loads(out.with_suffix(".json").read_text())
    assert alone["best_prompt"] == stage8["best_prompt"] and alone["best"] == pytest.approx(stage8["best"], abs=1e-6)


def test_the_packed_model_holds_results_and_the_exp_its_command(mini_synth, packed_model):
    """As ESPnet's templates: the zip packed after scoring holds RESULTS.md; <exp>/run.sh repeats the command."""
    with zipfile.ZipFile(packed_model) as z:
        packed = {name: z.read(name) for name in z.namelist() if name.endswith("RESULTS.md")}
    exp = mini_synth / "exp/slap_train_slap_tiny"
    assert list(packed.values()) == [(exp / "RESULTS.md").read_bytes()]
    run_sh = (exp / "run.sh").read_text()
    assert f"cd {mini_synth} && ./slap.sh --audio_format flac" in run_sh and "--train_args --max_epoch\\ 2" in run_sh
    assert run_sh.rstrip().endswith('"$@"') and os.access(exp / "run.sh", os.X_OK)
