"""Stage 8's modality gap in each space retrieval uses, as the SLAP reference measures it: a SLAP model's on its
predictions and projections (the UMAP picture of the predictions), a CLAP model's on its projections."""

import json

import pytest
from test_embed_identity import embed, save_model

from espnet2_slap.evaluation import scorers
from espnet2_slap.evaluation.plan import ScorePlan
from espnet2_slap.evaluation.results import Stage8


def no_umap(audio, text, png, seed=0, title=""):
    """A stand-in for the UMAP picture (minutes of numba compilation on this machine, not what is tested)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(b"png")
    return png


@pytest.mark.parametrize("model, spaces", [("slap", ["prediction", "projection"]), ("clap", ["projection"])])
def test_the_gap_of_each_space_in_results_json_and_md(model, spaces, corpus, bpe, tmp_path, monkeypatch):
    monkeypatch.setattr(scorers, "umap_picture", no_umap)
    exp = tmp_path / "exp"
    config, model_file = save_model(exp, bpe, seed=1, model_name=model)
    embed(config, model_file, corpus / "test", exp / "embed" / "test")
    plan = ScorePlan(retrieval=False)
    Stage8(exp, model_file.name, corpus, ["test"], plan, load_model=lambda: None).run()

    gap = json.loads((exp / "results.json").read_text())["test"]["modality_gap"]
    assert list(gap) == [*spaces, "umap"]
    for space in spaces:
        assert set(gap[space]) == {"separability", "centroid_distance"}
        assert 0 <= gap[space]["separability"] <= 100 and gap[space]["centroid_distance"] >= 0
    assert gap["umap"] == {"space": spaces[0], "png": str(exp / "embed/test/umap.png")}
    md = (exp / "RESULTS.md").read_text()
    assert "| space | linear separability | centroid distance |" in md
    for space in spaces:
        assert f"| {space} | {gap[space]['separability']:.1f} | {gap[space]['centroid_distance']:.3f} |" in md
    assert f"UMAP ({spaces[0]}): `{exp / 'embed/test/umap.png'}`" in md
    assert "The model was trained elsewhere" in md  # no model_selection.json in this exp
