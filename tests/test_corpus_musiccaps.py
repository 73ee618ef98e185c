"""egs/musiccaps: a miniature musiccaps-public.csv (bad rows, a clip gone from YouTube) with fetched clips or whole
videos, local/data.sh and stage 2, and the default recipe's model scored on it (evaluation only, stages 1-8)."""

import pytest
from test_corpus_common import kaldi, recipe_copy, run_corpus_recipe, skipped, write_audio

HEADER = (
    "ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset," "is_audioset_eval\n"
)
ROWS = [  # (ytid, start, end, caption, is_audioset_eval); lines 2, 3-4 (a newline in the caption), 5, ...
    ("-0Gj8-vB1q4", "1", "3", "The low quality recording features a ballad song.", "True"),
    ("-0SdAVK79lg", "1", "3", 'A "live" performance,\nwith ||| cheering', "True"),
    ("-0vPFx-wRRI", "1", "3", "A male vocalist sings this energetic song; café vibe.", "True"),
    ("-0xzrMun0Rs", "1", "3", "Solo piano piece.", "True"),
    ("gone0000000", "1", "3", "A clip whose video is gone.", "True"),  # 7: missing audio
    ("-1LrH01Ei1w", "abc", "3", "Bad start time.", "False"),  # 8: malformed
    ("-0Gj8-vB1q4", "1", "3", "The same ytid again.", "True"),  # 9: duplicate
    ("-1OlgJWehn8", "1", "3", "Not sure which split.", "maybe"),  # 10: malformed
    ("-1UWSisR2zo", "1", "3", "A training clip.", "False"),
    ("-1aObLmZq3Y", "1", "3", "Another training clip.", "False"),
]


def csv_text():
    lines = [HEADER]
    for ytid, start, end, caption, is_eval in ROWS:
        quoted = '"' + caption.replace('"', '""') + '"'
        lines.append(
            f"{ytid},{start},{end},\"/m/0140xf,/m/02cjck\",\"['low quality', 'ballad']\",{quoted},4,False,"
            f"{is_eval}\n"
        )
    lines.append("short,row\n")
    return "".join(lines)


def make_corpus(root, seconds):
    """musiccaps-public.csv and audio/<ytid>.<ext> for all but the gone clip (and the malformed rows)."""
    (root / "audio").mkdir(parents=True)
    (root / "musiccaps-public.csv").write_text(csv_text(), encoding="utf-8")
    exts = [".wav", ".flac", ".mp3", ".ogg", ".wav", ".wav"]
    ytids = ["-0Gj8-vB1q4", "-0SdAVK79lg", "-0vPFx-wRRI", "-0xzrMun0Rs", "-1UWSisR2zo", "-1aObLmZq3Y"]
    for i, (ytid, ext) in enumerate(zip(ytids, exts)):
        write_audio(root / "audio" / ("sub" if i == 3 else "") / f"{ytid}{ext}", seconds, 44100, seed=i)
    return root


EXPECTED_SKIPS = {
    "musiccaps-public.csv:7": "missing audio file",
    "musiccaps-public.csv:8": "malformed row",
    "musiccaps-public.csv:9": "duplicate id",
    "musiccaps-public.csv:10": "malformed row",
    "musiccaps-public.csv:13": "malformed row",
}
TEST_TEXT = {
    "-0Gj8-vB1q4": "The low quality recording features a ballad song.",
    "-0SdAVK79lg": 'A "live" performance, with | cheering',
    "-0vPFx-wRRI": "A male vocalist sings this energetic song; café vibe.",
    "-0xzrMun0Rs": "Solo piano piece.",
}


def test_whole_videos_are_cut_at_start_and_end(tmp_path):
    corpus = make_corpus(tmp_path / "musiccaps", seconds=4.0)
    recipe = recipe_copy(tmp_path, "musiccaps")
    log = run_corpus_recipe(
        recipe,
        {"MUSICCAPS": str(corpus)},
        "--stop_stage",
        "2",
        "--local_data_opts",
        "--audio_kind videos --valid_percent 50",
    )
    data = recipe / "data"
    assert kaldi(data / "test/text") == TEST_TEXT
    assert kaldi(data / "test/segments") == {ytid: f"{ytid} 1 3" for ytid in TEST_TEXT}
    assert kaldi(data / "test/wav.scp")["-0xzrMun0Rs"] == str(corpus / "audio/sub/-0xzrMun0Rs.ogg")
    # CRC-32 of the ytid puts one training clip in valid at 50 %
    assert kaldi(data / "train/text") == {"-1UWSisR2zo": "A training clip."}
    assert kaldi(data / "valid/text") == {"-1aObLmZq3Y": "Another training clip."}
    assert skipped(data, "musiccaps") == EXPECTED_SKIPS
    assert (data / "local/musiccaps.missing").read_text() == "gone0000000\n"
    assert "1 clips have no audio file" in log
    assert kaldi(recipe / "dump/raw/test/utt2num_samples") == {ytid: "32000" for ytid in TEST_TEXT}  # 2 s cut


@pytest.mark.slow
def test_evaluation_only_of_the_default_recipe_model(tmp_path, packed_model):
    corpus = make_corpus(tmp_path / "musiccaps", seconds=2.0)
    recipe = recipe_copy(tmp_path, "musiccaps")
    log = run_corpus_recipe(
        recipe,
        {"MUSICCAPS": str(corpus)},
        "--skip_train",
        "true",
        "--packed_model",
        str(packed_model),
        "--local_data_opts",
        "--sets test",
    )
    assert "Stage 3" not in log and "Stage 5" not in log
    assert sorted(p.name for p in (recipe / "data").iterdir()) == [".done", "local", "test"]
    exp = recipe / "exp/slap_pretrained"
    assert kaldi(exp / "embed/test/text2audio") == {f"{ytid}-cap0": ytid for ytid in TEST_TEXT}
    assert len((exp / "embed/test/audio_prediction.ids").read_text().split()) == 4
    results = (exp / "RESULTS.md").read_text()
    assert "## test" in results and "| prediction | T->A |" in results
    assert str(exp / "packed") in results  # the unpacked model was scored
