"""Inference: AudioTextModel.from_pretrained, embeddings of long audio, zero-shot, search, and slap_embed."""

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_args

from espnet2_slap.bin import slap_embed
from espnet2_slap.inference import AudioTextModel, windows
from espnet2_slap.prompts import PROMPTS
from espnet2_slap.tasks.slap import SLAPTask

WINDOW = 24000  # the tiny configs' 1.5-s crop at 16 kHz


def save_trained(tmp_path, bpe, model_name="slap"):
    """(config.yaml, model.pth) as a training would write them, for a freshly initialised tiny model."""
    bpemodel, token_list = bpe
    args = tiny_args(tmp_path, model_name, "--token_list", str(token_list), "--bpemodel", str(bpemodel))
    torch.manual_seed(0)
    model = SLAPTask.build_model(args)
    config, model_file = tmp_path / f"{model_name}.yaml", tmp_path / f"{model_name}.pth"
    config.write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), model_file)
    return config, model_file


@pytest.fixture(scope="module")
def slap(tmp_path_factory, bpe):
    return AudioTextModel.from_pretrained(*save_trained(tmp_path_factory.mktemp("slap"), bpe))


def test_embedding_kinds_per_model(slap, tmp_path, bpe):
    assert slap.kinds == ("representation", "projection", "prediction")
    clap = AudioTextModel.from_pretrained(*save_trained(tmp_path, bpe, "clap"))
    assert clap.kinds == ("representation", "projection")


def test_embed_audio_equals_the_model_on_one_window(slap):
    wave = (0.1 * np.random.default_rng(0).standard_normal(WINDOW)).astype(np.float32)
    emb = slap.embed_audio([wave])
    with torch.no_grad():
        direct = slap.model.encode_audio(torch.from_numpy(wave)[None], torch.tensor([WINDOW]))
    for kind in slap.kinds:
        np.testing.assert_allclose(emb[kind][0], getattr(direct, kind)[0].numpy(), rtol=1e-5, atol=1e-6)


def test_long_audio_is_the_mean_over_whole_windows(slap):
    wave = (0.1 * np.random.default_rng(1).standard_normal(int(2.5 * WINDOW))).astype(np.float32)
    parts = windows(wave, WINDOW)
    assert parts.shape == (3, WINDOW)
    np.testing.assert_array_equal(parts[2], wave[-WINDOW:])  # the last window ends with the clip
    expected = np.mean([slap.embed_audio([w])["prediction"][0] for w in parts], axis=0)
    np.testing.assert_allclose(slap.embed_audio([wave])["prediction"][0], expected, rtol=1e-5, atol=1e-6)


def test_checkpoint_of_another_model_is_refused(tmp_path, bpe):
    config, _ = save_trained(tmp_path, bpe, "slap")
    _, clap_file = save_trained(tmp_path, bpe, "clap")
    with pytest.raises(ValueError, match="does not match the model of its config: [0-9]+ missing keys"):
        AudioTextModel.from_pretrained(config, clap_file)
    state = torch.load(tmp_path / "slap.pth", weights_only=True)
    state["text_tower.projector.0.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="text_tower.projector.0.weight has shape"):
        AudioTextModel.from_pretrained(config, tmp_path / "bad.pth")


def test_zero_shot_and_search(slap, corpus):
    clips = [str(corpus / "wav" / "test" / f"synth_test_{i:05d}.wav") for i in range(3)]
    scores = slap.zero_shot(clips, ["piano", "organ", "flute", "strings"])
    assert list(scores) == list(PROMPTS) and all(s.shape == (3, 4) for s in scores.values())
    assert all(np.all(np.abs(s) <= 1 + 1e-5) for s in scores.values())
    catalogue = slap.embed_text(["loud organ", "a calm piano piece", "fast flute"])["prediction"]
    hits = slap.search("a calm piano piece", catalogue, k=2, ids=["a", "b", "c"])
    assert hits[0][0] == "b" and hits[0][1] == pytest.approx(1.0, abs=1e-5) and len(hits) == 2


def test_slap_embed_writes_resumable_embeddings(slap, corpus, tmp_path, bpe):
    config, model_file = tmp_path / "c.yaml", tmp_path / "m.pth"
    config.write_text(yaml.safe_dump(vars(slap.args)))
    torch.save(slap.model.state_dict(), model_file)
    out = tmp_path / "embed"
    cmd = [
        "--train_config",
        str(config),
        "--model_file",
        str(model_file),
        "--data_dir",
        str(corpus / "test"),
        "--output_dir",
        str(out),
        "--chunk_size",
        "3",
    ]
    slap_embed.main(cmd)
    audio = np.load(out / "audio_prediction.npy")
    assert audio.shape == (8, 64) and audio.dtype == np.float32
    assert (out / "audio_prediction.ids").read_text().split() == sorted(
        (corpus / "test" / "wav.scp").read_text().split()[::2]
    )
    mapping = [line.split() for line in (out / "text2audio").read_text().splitlines()]
    assert len(mapping) == 16 and mapping[0] == ["synth_test_00000-cap0", "synth_test_00000"]
    assert np.load(out / "text_representation.npy").shape[0] == 16
    import kaldiio

    ark = dict(kaldiio.load_scp(str(out / "audio_projection.scp")))
    np.testing.assert_array_equal(ark["synth_test_00001"][0], np.load(out / "audio_projection.npy")[1])

    chunks = {p: p.stat().st_mtime_ns for p in (out / "chunks").glob("*.npz")}
    assert len(chunks) == 3 + 6  # 8 clips and 16 captions by 3
    slap_embed.main(cmd)  # a rerun reuses every finished chunk
    assert {p: p.stat().st_mtime_ns for p in (out / "chunks").glob("*.npz")} == chunks
    np.testing.assert_array_equal(np.load(out / "audio_prediction.npy"), audio)


def test_slap_embed_names_a_missing_audio_file(slap, corpus, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"good {corpus}/wav/test/synth_test_00000.wav\nlost /nowhere/lost.wav\n")
    config, model_file = tmp_path / "c.yaml", tmp_path / "m.pth"
    config.write_text(yaml.safe_dump(vars(slap.args)))
    torch.save(slap.model.state_dict(), model_file)
    with pytest.raises(ValueError, match="utterance lost: audio file /nowhere/lost.wav does not exist"):
        slap_embed.main(
            [
                "--train_config",
                str(config),
                "--model_file",
                str(model_file),
                "--data_dir",
                str(data),
                "--output_dir",
                str(tmp_path / "out"),
                "--modalities",
                "audio",
            ]
        )
