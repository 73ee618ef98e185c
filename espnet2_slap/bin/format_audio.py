#!/usr/bin/env python3
"""Format the audio of a Kaldi data dir: mono, one sampling rate, one file format (recipe stage 2).

    python -m espnet2_slap.bin.format_audio --fs 16000 --audio_format flac \\
        [--segments data/x/segments] [--job 2 --nj 4] data/x/wav.scp dump/raw/x

Reads every file soundfile reads (wav, flac, ogg, mp3, ...), never changes it, keeps long tracks whole, mixes
to mono (mean of the channels) and resamples with soxr HQ (round(n * fs / fs_in) samples). With --segments,
utterances are the segments [start, end) s of the recordings (end -1: to the end), cut at output samples
[round(start * fs), round(end * fs)). Writes into the output dir:
  data/<id>.flac|wav     one file per utterance (16-bit PCM; wav also 32-bit float with --subtype FLOAT), or
  data/wav.ark, .scp     with --audio_format ark: a Kaldi ark of (rate, int16 array), one per job
  wav.scp                <id> <absolute path or ark:offset>
  utt2num_samples        <id> <samples> (an ESPnet shape file)
  utt2dur                <id> <seconds, 3 decimals>
  skipped                <id> <reason> of the utterances left out
  sources                <id> <size> <time of change> <start> <end> <path> of each utterance's source
  audio_format           "<fs> Hz <format> <subtype>": the output dir is for this rate and format only
With --job J --nj N: the J-th of N contiguous parts of the utterances sorted by id, and the lists are named
wav.scp.J etc. (data/wav.J.ark for ark). A rerun leaves what is complete and made from an unchanged source as
it is and redoes the rest (a source changed since is formatted again); an output dir formatted at another rate
or in another format is refused (exit 1, saying what to do).
A missing, empty or unreadable audio file, a segment with bad times, outside its recording or of an unknown
recording, and a repeated id are logged with the id and the file (and line), listed in skipped and counted;
--strict true makes the first one fatal. Exits 1 when none of the utterances could be formatted (with --job,
only a warning: the other parts may have formatted theirs, so the recipe checks the joined wav.scp).
"""

import argparse
import logging
import sys
from pathlib import Path

from espnet2.utils.types import str2bool

from espnet2_slap.audio.dump import FormatMismatch, format_audio
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wav_scp", type=Path, help="Kaldi wav.scp: '<recording or utterance id> <audio file>'")
    parser.add_argument("out_dir", type=Path, help="Output directory (dump/raw/<set>)")
    parser.add_argument("--fs", type=int, required=True, help="Output sampling rate in Hz")
    parser.add_argument("--audio_format", default="flac", choices=["flac", "wav", "ark"])
    parser.add_argument(
        "--subtype",
        default="PCM_16",
        choices=["PCM_16", "FLOAT"],
        help="Sample format; FLOAT (32-bit float) only with --audio_format wav",
    )
    parser.add_argument("--segments", type=Path, help="Kaldi segments: '<seg-id> <rec-id> <start-s> <end-s>'")
    parser.add_argument("--job", type=int, help="Which part to do, 1..nj (with --nj)")
    parser.add_argument("--nj", type=int, help="Number of parts (with --job)")
    parser.add_argument("--strict", type=str2bool, default=False, help="Stop at the first bad utterance")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.format_audio", cmd)
    parser = get_parser()
    args = parser.parse_args(cmd)
    if args.fs <= 0:
        parser.error(f"--fs {args.fs} is not a sampling rate")
    if (args.job is None) != (args.nj is None):
        parser.error("--job and --nj go together")
    if args.nj is not None and not 1 <= args.job <= args.nj:
        parser.error(f"--job {args.job} is not in 1..{args.nj}")
    if args.subtype == "FLOAT" and args.audio_format != "wav":
        parser.error(f"--subtype FLOAT needs --audio_format wav, not {args.audio_format}")
    try:
        summary = format_audio(
            args.wav_scp,
            args.out_dir,
            args.fs,
            args.audio_format,
            args.subtype,
            args.segments,
            args.job,
            args.nj,
            args.strict,
        )
    except FormatMismatch as e:
        sys.exit(f"format_audio: {e}")
    if summary.total and not summary.written + summary.reused:
        if args.job is None:
            sys.exit(f"format_audio: none of the {summary.total} utterances of {args.wav_scp} could be formatted")
        # a part may hold only bad utterances while others are fine: the recipe checks the joined wav.scp
        logging.warning(f"none of the {summary.total} utterances of part {args.job} of {args.nj} could be formatted")


if __name__ == "__main__":
    main()
