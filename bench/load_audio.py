"""Clips per second for random 10-s crops of 4-min tracks: crop-only reading (``lazy_sound``) vs whole-file decoding.

"crop" is what the ``lazy_sound`` data type does in training: the offset is drawn from the track's known length
(``utt2num_samples``) and ``espnet2_slap.audio.io.read_mono(path, offset, frames)`` seeks and decodes
only the crop. "whole" is what ESPnet's ``sound`` type does: decode the whole file (``read_mono(path)``), then
take the crop. Each runs in a torch DataLoader (one clip per item) with 1 and 2 worker processes, as in training.

The tracks (stereo, 44.1 kHz, --minutes long, a chord plus noise) are written once into --workdir in each format
soundfile writes (wav and flac 16-bit, ogg vorbis, mp3) and reused by later runs.

Not a test: figures depend on the machine and its load. Example:

    tools/venv/bin/python bench/load_audio.py --workdir /tmp/load_audio_bench
"""

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from espnet2_slap.audio.io import read_mono

FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
FS = 44100


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/espnet2_slap_load_audio"))
    parser.add_argument("--minutes", type=float, default=4.0, help="track length")
    parser.add_argument("--crop_seconds", type=float, default=10.0)
    parser.add_argument("--num_tracks", type=int, default=4, help="tracks per format (crops cycle over them)")
    parser.add_argument("--crop_clips", type=int, default=200, help="clips timed for crop-only reading")
    parser.add_argument("--whole_clips", type=int, default=16, help="clips timed for whole-file decoding")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    return parser


def write_tracks(workdir: Path, ext: str, num_tracks: int, minutes: float) -> list:
    """Paths of ``num_tracks`` tracks in one format, written unless already there; writes in 1-s blocks
    (libsndfile 1.2 crashes on one long ogg write)."""
    fmt, subtype = FORMATS[ext]
    n = round(minutes * 60 * FS)
    paths = []
    for i in range(num_tracks):
        path = workdir / f"track{i}_{minutes:g}min.{ext}"
        if not path.exists() or sf.info(str(path)).frames != n:
            t = np.arange(n) / FS
            rng = np.random.default_rng(i)
            mono = 0.2 * np.sin(2 * np.pi * (220 + 10 * i) * t) + 0.01 * rng.standard_normal(n)
            stereo = np.stack([mono, 0.7 * mono], axis=1).astype(np.float32)
            tmp = path.with_name("tmp_" + path.name)
            with sf.SoundFile(tmp, "w", FS, 2, format=fmt, subtype=subtype) as f:
                for start in range(0, n, FS):
                    f.write(stereo[start : start + FS])
            tmp.rename(path)
        paths.append(str(path))
    return paths


class Crops(torch.utils.data.Dataset):
    """Item i: a random crop of track i % len(paths), read crop-only or from a whole-file decode."""

    def __init__(self, paths: list, num_samples: int, crop: int, clips: int, crop_only: bool):
        self.paths, self.num_samples, self.crop, self.clips, self.crop_only = paths, num_samples, crop, clips, crop_only

    def __len__(self) -> int:
        return self.clips

    def __getitem__(self, i: int) -> np.ndarray:
        offset = np.random.randint(0, self.num_samples - self.crop + 1)
        path = self.paths[i % len(self.paths)]
        if self.crop_only:
            return read_mono(path, offset, self.crop)[0]
        return read_mono(path)[0][offset : offset + self.crop]


def clips_per_second(dataset: Crops, workers: int) -> float:
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
    start = time.perf_counter()
    for clip in loader:
        assert len(clip) == dataset.crop
    return len(dataset) / (time.perf_counter() - start)


def main():
    args = get_parser().parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    crop, num_samples = round(args.crop_seconds * FS), round(args.minutes * 60 * FS)
    print(f"{args.crop_seconds:g}-s crops of {args.minutes:g}-min stereo {FS}-Hz tracks; clips per second")
    print("| format | workers | crop-only | whole-file | speed-up |\n|---|---|---|---|---|")
    for ext in args.formats:
        if FORMATS[ext][0] not in sf.available_formats():
            print(f"| {ext} | - | this libsndfile has no {ext} | | |")
            continue
        paths = write_tracks(args.workdir, ext, args.num_tracks, args.minutes)
        for workers in args.workers:
            fast = clips_per_second(Crops(paths, num_samples, crop, args.crop_clips, True), workers)
            slow = clips_per_second(Crops(paths, num_samples, crop, args.whole_clips, False), workers)
            print(f"| {ext} | {workers} | {fast:.1f} | {slow:.2f} | {fast / slow:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
