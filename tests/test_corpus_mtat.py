"""egs/mtat: a miniature annotations_final.csv (tab-separated, quoted, bad rows) with mp3 files in 0/ ... f/,
local/data.sh and stage 2; the 50-tag label files."""

from test_corpus_common import kaldi, recipe_copy, run_corpus_recipe, skipped, write_audio

from espnet2_slap.corpora import mtat
from espnet2_slap.corpora.mtat import TOP50

COLUMNS = ["clip_id", "chanting", "singer", *TOP50[:25], "hard rock", *TOP50[25:], "clasical", "mp3_path"]
CLIPS = [  # (clip_id, positive tags, mp3_path, note); lines from 2
    ("2", ["classical", "strings", "clasical"], "f/american_bach_soloists-j_s__bach-01-bwv54__i_aria-30-59.mp3", ""),
    ("6", ["guitar", "no vocals", "hard rock"], "0/artist-album-01-song-0-29.mp3", ""),
    ("10", ["female voice", "pop"], "c/artist-album-02-song-30-59.mp3", ""),
    ("11", ["singer"], "0/artist-album-03-song-0-29.mp3", "untagged"),
    ("12", ["techno"], "d/artist-album-04-song-0-29.mp3", "empty"),
    ("6", ["rock"], "1/artist-album-05-song-0-29.mp3", "duplicate"),
    ("13", ["rock"], "g/artist-album-06-song-0-29.mp3", "bad path"),
    ("14", ["piano"], "e/artist-album-07-song-0-29.mp3", "value 2"),
    ("15", ["ambient", "slow"], "b/artist-album-08-song-0-29.mp3", ""),
]


def make_corpus(root):
    lines = ["\t".join(f'"{c}"' for c in COLUMNS)]
    for clip, tags, path, note in CLIPS:
        values = ["2" if note == "value 2" and c == "piano" else "1" if c in tags else "0" for c in COLUMNS[1:-1]]
        lines.append("\t".join(f'"{v}"' for v in [clip, *values, path]))
        if note == "empty":
            (root / "mp3" / path).parent.mkdir(parents=True, exist_ok=True)
            (root / "mp3" / path).write_bytes(b"")
        elif note != "duplicate":
            write_audio(root / "mp3" / path, 1.0, 16000, seed=int(clip))
    lines.append('"16"\t"0"')
    root.joinpath("annotations_final.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_recipe_prepares_and_formats_the_corpus(tmp_path):
    corpus = make_corpus(tmp_path / "mtat")
    recipe = recipe_copy(tmp_path, "mtat")
    run_corpus_recipe(recipe, {"MTAT": str(corpus)}, "--stop_stage", "2", "--test_sets", "train valid test")
    data = recipe / "data"
    assert kaldi(data / "train/utt2tags") == {"6": "guitar no_vocals", "15": "slow ambient"}
    assert kaldi(data / "train/text") == {"6": "guitar, no vocals", "15": "slow, ambient"}
    assert kaldi(data / "valid/utt2tags") == {"10": "pop female_voice"}
    assert kaldi(data / "test/utt2tags") == {"2": "classical strings"}
    assert kaldi(data / "test/wav.scp") == {"2": str(corpus / "mp3" / CLIPS[0][2])}
    assert (data / "test/tags.classes").read_text().split() == [t.replace(" ", "_") for t in TOP50]
    assert skipped(data, "mtat") == {
        "annotations_final.csv:5": "none of the 50 tags",
        "annotations_final.csv:6": "empty audio file",
        "annotations_final.csv:7": "duplicate id",
        "annotations_final.csv:8": "bad mp3_path",
        "annotations_final.csv:9": "malformed row",
        "annotations_final.csv:11": "malformed row",
    }
    assert kaldi(recipe / "dump/raw/train/utt2tags") == kaldi(data / "train/utt2tags")


def test_untagged_clips_kept_and_most_frequent_tags(tmp_path):
    corpus = make_corpus(tmp_path / "mtat")
    data = tmp_path / "data"
    mtat.main(
        [
            "--annotations",
            str(corpus / "annotations_final.csv"),
            "--audio_dir",
            str(corpus / "mp3"),
            "--data_dir",
            str(data),
            "--keep_untagged",
            "true",
            "--tags",
            "frequent",
            "--num_tags",
            "3",
        ]
    )
    # counts over the rows: rock 2, then the tags used once in column order
    assert (data / "test/tags.classes").read_text().split() == ["rock", "singer", "guitar"]
    assert kaldi(data / "train/utt2tags") == {"11": "singer", "15": "", "6": "guitar"}
    assert kaldi(data / "train/text") == {"11": "singer", "15": "music", "6": "guitar"}
