"""A row with bytes that are not text in the metadata file's encoding (invalid UTF-8 pasted into one caption)
costs that row only: it is reported with its file, line and the offset of the bad byte, counted, and skipped,
and every other row is read (espnet2_slap/corpora/common.py: decode_lines and the readers over it)."""

import json

import pytest
from test_corpus_common import kaldi, problems

from espnet2_slap.corpora import musiccaps, song_describer
from espnet2_slap.corpora.common import PrepError, Report, read_csv_rows, read_jsonl_rows, read_lines

MUSICCAPS_HEADER = (
    b"ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,is_audioset_eval"
)
SONG_DESCRIBER_HEADER = b"caption_id,track_id,caption,is_valid_subset,familiarity,artist_id,album_id,path,duration"


def undecodable(data_dir, corpus):
    """[(where, detail)] of the rows skipped as undecodable."""
    return [(p["where"], p["detail"]) for p in problems(data_dir, corpus) if p["category"] == "undecodable row"]


def test_musiccaps_keeps_the_64_good_rows_of_65(tmp_path):
    """MusicCaps' layout, 65 clips; the caption of the 31st (line 32) holds b"\\xff\\xfe"."""
    lines = [MUSICCAPS_HEADER]
    for i in range(65):
        caption = b"A calm solo piano piece, recorded at home." + (b" caf\xff\xfe noise" if i == 30 else b"")
        eval_flag = b"True" if i % 3 == 0 else b"False"
        lines.append(
            b'yt%07d,30,40,"/m/04rlf,/m/05r5c","[\'calm\', \'piano\']","%s",4,False,%s' % (i, caption, eval_flag)
        )
    csv = tmp_path / "musiccaps-public.csv"
    csv.write_bytes(b"\n".join(lines) + b"\n")
    for i in range(65):
        (tmp_path / "clips" / f"yt{i:07d}.wav").parent.mkdir(exist_ok=True)
        (tmp_path / "clips" / f"yt{i:07d}.wav").touch()
    data = tmp_path / "data"
    counts = musiccaps.main(
        ["--csv", str(csv), "--audio_dir", str(tmp_path / "clips"), "--data_dir", str(data), "--check_audio", "false"]
    )
    assert sum(counts.values()) == 64
    kept = {uid for dset in counts for uid in kaldi(data / dset / "text")}
    assert kept == {f"yt{i:07d}" for i in range(65)} - {"yt0000030"}
    offset = csv.read_bytes().index(b"\xff")
    assert undecodable(data, "musiccaps") == [(f"{csv}:32", f"not valid UTF-8 at byte {offset} (invalid start byte)")]
    assert [p["action"] for p in problems(data, "musiccaps")] == ["skipped"]


def test_song_describer_loses_one_caption_of_a_track_only(tmp_path):
    """Song Describer's layout, 65 captions of 13 tracks (5 each); a caption over two lines (10-11) holds a Latin-1
    byte on its second line: that caption is left out, its track keeps the other four."""
    lines = [SONG_DESCRIBER_HEADER]
    for i in range(65):
        track = 1000 + i // 5
        caption = b'"Warm strings,\nthen a caf\xe9 piano."' if i == 8 else b'"Guitar, drums; take %d."' % i
        lines.append(b"%d,%d,%s,True,1,%d,7,%02d/%d.mp3,120.0" % (i, track, caption, track % 7, track % 100, track))
    csv = tmp_path / "song_describer.csv"
    csv.write_bytes(b"\n".join(lines) + b"\n")
    data = tmp_path / "data"
    counts = song_describer.main(
        ["--csv", str(csv), "--audio_dir", str(tmp_path / "audio"), "--data_dir", str(data), "--check_audio", "false"]
    )
    assert counts == {"test": 13}
    caption_ids = kaldi(data / "test" / "utt2caption_ids")
    assert sum(len(ids.split()) for ids in caption_ids.values()) == 64
    assert caption_ids["1001"] == "5 6 7 9"
    assert kaldi(data / "test" / "text")["1001"].count(" ||| ") == 3
    offset = csv.read_bytes().index(b"\xe9")
    assert undecodable(data, "song_describer") == [
        (f"{csv}:10-11", f"not valid UTF-8 at byte {offset} (invalid continuation byte)")
    ]


def test_a_bad_header_stops_the_file_naming_it(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_bytes(b"\xef\xbb\xbfid,capti\xf3n\n1,a\n")
    with pytest.raises(PrepError, match=r"m.csv:1: the header is not valid UTF-8 at byte 11 \(invalid continuation"):
        list(read_csv_rows(csv, ["id"], Report("t")))


def test_tsv_jsonl_and_list_files_skip_the_bad_line_only(tmp_path):
    """MagnaTagATune's TSV, a JSONL file (privatecaps), a list file (GTZAN's splits, OpenMIC's partitions)."""
    tsv = tmp_path / "annotations_final.csv"
    tsv.write_bytes(b"clip_id\tmp3_path\n1\ta/1.mp3\n2\ta/\x802.mp3\n3\tb/3.mp3\n")
    report = Report("t")
    assert [r.values["clip_id"] for r in read_csv_rows(tsv, ["clip_id"], report, "\t")] == ["1", "3"]
    assert [(p.where, p.detail) for p in report.problems] == [
        (f"{tsv}:3", "not valid UTF-8 at byte 31 (invalid start byte)")
    ]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_bytes(json.dumps({"a": "caf\u00e9"}).encode() + b'\n{"a": "caf\xe9"}\n{"a": "b"}\n')
    report = Report("t")
    assert [r.where for r in read_jsonl_rows(jsonl, ["a"], report)] == [f"{jsonl}:1", f"{jsonl}:3"]
    assert [(p.where, p.category) for p in report.problems] == [(f"{jsonl}:2", "undecodable row")]
    listing = tmp_path / "test.txt"
    listing.write_bytes(b"blues/blues.00000.wav\r\nblues/blues.\xc300001.wav\r\nrock/rock.00002.wav\r\n")
    report = Report("t")
    assert list(read_lines(listing, report)) == [
        (f"{listing}:1", "blues/blues.00000.wav"),
        (f"{listing}:3", "rock/rock.00002.wav"),
    ]
    assert [p.where for p in report.problems] == [f"{listing}:2"]


def test_the_encoding_given_reads_every_row(tmp_path):
    """--encoding names the file's encoding: a Latin-1 file is all text in it, a UTF-16 file is read whole."""
    csv = tmp_path / "m.csv"
    csv.write_bytes(b"id,caption\n1,caf\xe9\n2,na\xefve\n")
    rows = list(read_csv_rows(csv, ["id"], Report("t"), encoding="latin-1"))
    assert [r.values["caption"] for r in rows] == ["caf\u00e9", "na\u00efve"]
    csv.write_text("id,caption\n1,caf\u00e9\n2,\u010a line\n", encoding="utf-16")
    rows = list(read_csv_rows(csv, ["id"], Report("t"), encoding="utf-16"))
    assert [(r.where, r.values["caption"]) for r in rows] == [(f"{csv}:2", "caf\u00e9"), (f"{csv}:3", "\u010a line")]
