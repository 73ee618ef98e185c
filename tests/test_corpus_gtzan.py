"""egs/gtzan: a miniature genres/ tree (3 clips a genre, one unreadable) with the fault-filtered split, local/data.sh
and stage 2; split lists with bad entries."""

import torchaudio.datasets.gtzan as torchaudio_gtzan
from test_corpus_common import kaldi, recipe_copy, run_corpus_recipe, skipped, write_audio, write_garbage

from espnet2_slap.corpora import gtzan
from espnet2_slap.corpora.gtzan import GENRES

SETS = ("train", "valid", "test")


def first_of_each_genre(dset: str) -> dict:
    """{stem: genre}: the first clip of each genre in the fault-filtered list of ``dset``."""
    firsts = {}
    for stem in getattr(torchaudio_gtzan, f"filtered_{dset}"):
        firsts.setdefault(stem.split(".")[0], stem)
    return {stem: genre for genre, stem in firsts.items()}


def make_corpus(root):
    """genres/<genre>/<genre>.000NN.wav: the first clip of each genre of each fault-filtered list, and a clip in
    no list; the valid set's jazz clip is broken."""
    broken = next(stem for stem, genre in first_of_each_genre("valid").items() if genre == "jazz")
    clips = {stem: genre for dset in SETS for stem, genre in first_of_each_genre(dset).items()}
    listed = {stem for dset in SETS for stem in getattr(torchaudio_gtzan, f"filtered_{dset}")}
    unlisted = next(f"{g}.{n:05d}" for g in GENRES for n in range(100) if f"{g}.{n:05d}" not in listed)
    for i, (stem, genre) in enumerate({**clips, unlisted: unlisted.split(".")[0]}.items()):
        path = root / "genres" / genre / f"{stem}.wav"
        if stem == broken:
            write_garbage(path)
        else:
            write_audio(path, 1.0, 22050, seed=i)
    return root, broken


def test_recipe_prepares_and_formats_the_corpus_with_the_fault_filtered_split(tmp_path):
    corpus, broken = make_corpus(tmp_path / "gtzan")
    recipe = recipe_copy(tmp_path, "gtzan")
    log = run_corpus_recipe(recipe, {"GTZAN": str(corpus)}, "--stop_stage", "2", "--test_sets", "train valid test")
    data = recipe / "data"
    for dset in SETS:
        expected = {stem: g for stem, g in first_of_each_genre(dset).items() if stem != broken}
        assert kaldi(data / dset / "utt2genre") == expected
        assert kaldi(data / dset / "text") == {uid: f"{g} music" for uid, g in expected.items()}
        assert kaldi(data / dset / "wav.scp") == {
            uid: str(corpus / "genres" / g / f"{uid}.wav") for uid, g in expected.items()
        }
        assert (data / dset / "genre.classes").read_text().split() == GENRES
        assert kaldi(recipe / "dump/raw" / dset / "utt2genre") == expected
        assert (recipe / "dump/raw" / dset / "genre.classes").read_text().split() == GENRES  # copied as it is
    skips = skipped(data, "gtzan")
    position = torchaudio_gtzan.filtered_valid.index(broken)
    assert skips[f"torchaudio.datasets.gtzan.filtered_valid[{position}]"] == "unreadable audio file"
    assert len(skips) == 443 + 197 + 290 - 29  # every listed clip not here, and the broken one
    assert "900 missing audio file, 1 unreadable audio file" in log
    assert "clips in no split list (left out)" in (data / "local/gtzan.problems").read_text()


def test_bad_split_list_entries(tmp_path):
    corpus, _ = make_corpus(tmp_path / "gtzan")
    split = tmp_path / "split"
    split.mkdir()
    (split / "train.txt").write_text("blues/blues.00000.wav\nblues/rock.00000.wav\nnonsense\n\nrock/rock.00000.au\n")
    (split / "valid.txt").write_text("blues/blues.00000.wav\npop/pop.00010.wav\n")
    (split / "test.txt").write_text("disco/disco.00001.wav\n")
    counts = gtzan.main(["--gtzan_dir", str(corpus), "--split_dir", str(split), "--data_dir", str(tmp_path / "data")])
    assert counts == {"train": 2, "valid": 1, "test": 1}
    assert skipped(tmp_path / "data", "gtzan") == {
        "train.txt:2": "malformed list entry",
        "train.txt:3": "malformed list entry",
        "valid.txt:1": "duplicate id",
    }
