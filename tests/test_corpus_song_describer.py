"""egs/song_describer: a miniature song_describer.csv (several captions a track, bad rows) with audio/NN/<id>.2min.mp3,
local/data.sh and stage 2, the train/valid/test option, and the default recipe's model scored on it (the
recipe's default, evaluation only: stages 1, 2, 7, 8) with many-to-one retrieval."""

import pytest
from test_corpus_common import kaldi, recipe_copy, run_corpus_recipe, skipped, write_audio

from espnet2_slap.corpora import song_describer

CSV = (
    "caption_id,track_id,caption,is_valid_subset,familiarity,artist_id,album_id,path,duration\n"
    "1,18500,A mellow piano ballad.,True,1,7,11,00/18500.mp3,120.0\n"  # 2
    '2,18500,"Slow, sad; ""emotional"" piano",True,0,7,11,00/18500.mp3,120.0\n'  # 3
    "3,18500,Not in the valid subset.,False,2,7,11,00/18500.mp3,120.0\n"  # 4
    "4,1001,Electronic beat with a deep bass.,True,1,6,12,10/1001.mp3,120.0\n"  # 5
    "5,2002,A track whose audio is missing.,True,1,9,13,02/2002.mp3,120.0\n"  # 6: missing audio
    '6,3003,"Folk song,\nacoustic guitar",True,1,10,14,03/3003.mp3,120.0\n'  # 7-8: only 03/3003.mp3 there
    "4,1001,A repeated caption_id.,True,1,6,12,10/1001.mp3,120.0\n"  # 9: duplicate caption_id
    "7,1001,Another path.,True,1,6,12,11/1001.mp3,120.0\n"  # 10: conflicting path
    "8,1001,Bad flag.,yes?,1,6,12,10/1001.mp3,120.0\n"  # 11: malformed
    "9,1001,,True,1,6,12,10/1001.mp3,120.0\n"  # 12: empty caption
    "10,1001,Strings and brass ||| cinematic.,True,1,6,12,10/1001.mp3,120.0\n"  # 13
)


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "song_describer"
    root.mkdir()
    (root / "song_describer.csv").write_text(CSV, encoding="utf-8")
    write_audio(root / "audio/00/18500.2min.mp3", 2.5, 44100, channels=2, seed=1)
    write_audio(root / "audio/10/1001.2min.mp3", 2.0, 44100, seed=2)
    write_audio(root / "audio/03/3003.mp3", 2.0, 44100, seed=3)
    return root


SKIPS = {
    "song_describer.csv:6": "missing audio file",
    "song_describer.csv:9": "duplicate caption_id",
    "song_describer.csv:10": "conflicting path",
    "song_describer.csv:11": "malformed row",
    "song_describer.csv:12": "empty caption",
}
TEXT = {
    "1001": "Electronic beat with a deep bass. ||| Strings and brass | cinematic.",
    "18500": 'A mellow piano ballad. ||| Slow, sad; "emotional" piano',
    "3003": "Folk song, acoustic guitar",
}


def test_recipe_prepares_the_valid_subset(corpus, tmp_path):
    recipe = recipe_copy(tmp_path, "song_describer")
    run_corpus_recipe(recipe, {"SONG_DESCRIBER": str(corpus)}, "--stop_stage", "2")
    data = recipe / "data"
    assert sorted(p.name for p in data.iterdir()) == [".done", "local", "test"]
    assert kaldi(data / "test/text") == TEXT
    assert kaldi(data / "test/utt2caption_ids") == {"1001": "4 10", "18500": "1 2", "3003": "6"}
    assert kaldi(data / "test/wav.scp") == {
        "1001": str(corpus / "audio/10/1001.2min.mp3"),
        "18500": str(corpus / "audio/00/18500.2min.mp3"),
        "3003": str(corpus / "audio/03/3003.mp3"),
    }
    assert skipped(data, "song_describer") == SKIPS
    assert kaldi(recipe / "dump/raw/test/utt2caption_ids") == kaldi(data / "test/utt2caption_ids")
    assert kaldi(recipe / "dump/raw/test/text") == TEXT


def test_all_captions_and_training_sets(corpus, tmp_path):
    data = tmp_path / "data"
    song_describer.main(
        [
            "--csv",
            str(corpus / "song_describer.csv"),
            "--audio_dir",
            str(corpus / "audio"),
            "--data_dir",
            str(data),
            "--subset",
            "all",
            "--train",
            "true",
        ]
    )
    sets = {dset: kaldi(data / dset / "utt2caption_ids") for dset in ("train", "valid", "test")}
    assert sets == {"train": {"18500": "1 2 3"}, "valid": {"3003": "6"}, "test": {"1001": "4 10"}}  # by artist


@pytest.mark.slow
def test_evaluation_only_of_the_default_recipe_model(corpus, tmp_path, packed_model):
    recipe = recipe_copy(tmp_path, "song_describer")
    log = run_corpus_recipe(recipe, {"SONG_DESCRIBER": str(corpus)}, "--packed_model", str(packed_model))
    assert "Stage 5" not in log
    exp = recipe / "exp/slap_pretrained"
    assert kaldi(exp / "embed/test/text2audio") == {
        "1001-cap0": "1001",
        "1001-cap1": "1001",
        "18500-cap0": "18500",
        "18500-cap1": "18500",
        "3003-cap0": "3003",
    }
    results = (exp / "RESULTS.md").read_text()
    assert "| prediction | T->A |" in results and "| projection | A->T |" in results
