"""Clips per second of 10-s crops: crop-only vs whole-file decoding, the dump's formats, and the trainer's pipeline.

"crop" is what the ``lazy_sound`` data type does in training: the offset is drawn from the track's known length
(``utt2num_samples``) and ``espnet2_slap.audio.io.read_mono(path, offset, frames)`` seeks and decodes
only the crop. "whole" is what ESPnet's ``sound`` type does: decode the whole file (``read_mono(path)``), then
take the crop. Each runs in a torch DataLoader (one clip per item) with 1 and 2 worker processes, as in training.

The tracks (stereo, 44.1 kHz, --minutes long, a chord plus noise) are written once into --workdir in each format
soundfile writes (wav and flac 16-bit, ogg vorbis, mp3) and reused by later runs.

"dump": the wav tracks formatted as stage 2 does (``audio.dump.format_audio``: mono, --dump_fs, 16-bit wav or
flac); random 10-s crops read by ``read_mono`` in this process (one core: the reading alone, no loader) and in a
DataLoader with 1 and 2 workers; with the disk each format takes per hour of audio. The wav row "libsndfile
(before)" reads through ``read_mono_libsndfile``, the path every file took before the wav fast path (the same
samples). The files are read once first, so that they are in the page cache, as a dump read every epoch is.

"pipeline": what the trainer sees for the tiny config (``egs/mini_synth/slap1/conf/tuning/train_<model>_tiny.yaml``,
its crop and batch size): ESPnet's iterator from ``SLAPTask.build_iter_factory`` over a ``lazy_sound`` list of
--pipeline_clips utterances of the dump at the config's rate (each one of the tracks), with its preprocessor
(crop, caption tokenization) and collate function, --workers loader processes; against the model's own
consumption, clips/s of its training steps (forward, backward, optimizer step with the EMA) on batches from
that iterator, with --threads torch threads.

Not a test: figures depend on the machine and its load. Example:

    tools/venv/bin/python bench/load_audio.py --workdir /tmp/load_audio_bench
"""

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile as sf
import torch

from espnet2_slap.audio.dump import format_audio
from espnet2_slap.audio.io import read_mono, read_mono_libsndfile

REPO = Path(__file__).resolve().parents[1]
TINY_CONF = REPO / "egs" / "mini_synth" / "slap1" / "conf" / "tuning"

FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
FS = 44100
DUMP_LOADER_BATCH = 16


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
    parser.add_argument("--dump_fs", type=int, default=48000, help="rate of the dump table (the paper's)")
    parser.add_argument("--dump_clips", type=int, default=2000, help="clips timed per dump format and loader")
    parser.add_argument("--pipeline_model", choices=["slap", "clap"], default="clap", help="tiny config")
    parser.add_argument("--pipeline_clips", type=int, default=512, help="utterances of the pipeline's epoch")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the model's training steps")
    parser.add_argument(
        "--sections", nargs="+", default=["source", "dump", "pipeline"], choices=["source", "dump", "pipeline"]
    )
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
    """Item i: a random crop of track i % len(paths), read crop-only (``read_mono``, or with
    ``libsndfile`` its libsndfile path, which read every format before the wav fast path) or from a whole-file
    decode."""

    def __init__(self, paths: list, num_samples: int, crop: int, clips: int, crop_only: bool, libsndfile=False):
        self.paths, self.num_samples, self.crop, self.clips, self.crop_only = paths, num_samples, crop, clips, crop_only
        self.read = read_mono_libsndfile if libsndfile else read_mono

    def __len__(self) -> int:
        return self.clips

    def __getitem__(self, i: int) -> np.ndarray:
        offset = np.random.randint(0, self.num_samples - self.crop + 1)
        path = self.paths[i % len(self.paths)]
        if self.crop_only:
            return self.read(path, offset, self.crop)[0]
        return self.read(path)[0][offset : offset + self.crop]


def clips_per_second(dataset: Crops, workers: int, batch_size: Optional[int] = None) -> float:
    """Clips/s of one pass over ``dataset`` through a DataLoader (``batch_size`` clips stacked per transfer)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    start = time.perf_counter()
    for clips in loader:
        assert clips.shape[-1] == dataset.crop
    return len(dataset) / (time.perf_counter() - start)


def dump_tracks(args, fs: int, ext: str) -> list:
    """The wav tracks formatted by stage 2's formatter at ``fs`` in ``ext`` (kept when already there)."""
    sources = write_tracks(args.workdir, "wav", args.num_tracks, args.minutes)
    wav_scp = args.workdir / "sources.scp"
    wav_scp.write_text("".join(f"track{i} {path}\n" for i, path in enumerate(sources)))
    out = args.workdir / f"dump_{fs}_{ext}"
    format_audio(wav_scp, out, fs, ext)
    return [str(out / "data" / f"track{i}.{ext}") for i in range(len(sources))]


def dump_table(args) -> None:
    fs = args.dump_fs
    crop, num_samples = round(args.crop_seconds * fs), round(args.minutes * 60 * fs)
    print(
        f"\ndump: {args.crop_seconds:g}-s crops of {args.minutes:g}-min mono {fs}-Hz 16-bit tracks; clips per second "
        f"reading alone in one process, and through a DataLoader ({DUMP_LOADER_BATCH} clips a batch)"
    )
    workers = " | ".join(f"{w} worker{'s' if w > 1 else ''}" for w in args.workers)
    print(f"| format | reader | MB per hour | reading alone (1 core) | {workers} |")
    print("|---|---|---|---|" + "---|" * len(args.workers))
    for ext, libsndfile in (("wav", True), ("wav", False), ("flac", False)):
        paths = dump_tracks(args, fs, ext)
        mb_per_hour = sum(os.path.getsize(p) for p in paths) / 1e6 / (len(paths) * args.minutes / 60)
        clips = args.dump_clips if ext == "wav" and not libsndfile else args.dump_clips // 10
        dataset = Crops(paths, num_samples, crop, clips, True, libsndfile)
        for path in paths:  # the page cache holds the files, as for a dump read epoch after epoch
            Path(path).read_bytes()
        start = time.perf_counter()
        for i in range(len(dataset)):
            dataset[i]
        alone = len(dataset) / (time.perf_counter() - start)
        loaders = " | ".join(f"{clips_per_second(dataset, w, DUMP_LOADER_BATCH):.0f}" for w in args.workers)
        reader = "libsndfile (before)" if libsndfile else ("pread (fast path)" if ext == "wav" else "libsndfile")
        print(f"| {ext} | {reader} | {mb_per_hour:.0f} | {alone:.0f} | {loaders} |", flush=True)


def pipeline_args(args, workdir: Path, ext: str, num_workers: int):
    """SLAPTask arguments of the tiny config over a lazy_sound list of the dump at the config's rate."""
    from espnet2_slap.tasks.slap import SLAPTask
    from espnet2_slap.train.tokenizer import train_sentencepiece

    config = TINY_CONF / f"train_{args.pipeline_model}_tiny.yaml"
    fs = SLAPTask.sample_rate(SLAPTask.get_parser().parse_args(["--config", str(config)]))
    paths = dump_tracks(args, fs, ext)
    data = workdir / ext
    data.mkdir(exist_ok=True)
    uids = [f"utt{i:05d}" for i in range(args.pipeline_clips)]
    num_samples = round(args.minutes * 60 * fs)
    (data / "wav.scp").write_text("".join(f"{u} {paths[i % len(paths)]}\n" for i, u in enumerate(uids)))
    (data / "utt2num_samples").write_text("".join(f"{u} {num_samples}\n" for u in uids))
    words = ["calm", "bright", "piano", "guitar", "slow", "fast", "loud", "soft", "minor", "major", "track"]
    (data / "text").write_text(
        "".join(f"{u} a {words[i % 11]} {words[(3 * i) % 11]} piece\n" for i, u in enumerate(uids))
    )
    bpemodel, token_list = train_sentencepiece(data / "text", workdir / f"bpe_{ext}", vocab_size=30)
    return SLAPTask.get_parser().parse_args(
        [
            "--config",
            str(config),
            "--normalize",
            "none",
            "--token_list",
            str(token_list),
            "--bpemodel",
            str(bpemodel),
            "--train_data_path_and_name_and_type",
            f"{data}/wav.scp,speech,lazy_sound",
            "--train_data_path_and_name_and_type",
            f"{data}/text,text,text",
            "--train_shape_file",
            f"{data}/utt2num_samples",
            "--num_workers",
            str(num_workers),
            "--output_dir",
            str(workdir / "exp"),
        ]
    )


def model_clips_per_second(task_args, batches: list, threads: int) -> float:
    """Clips/s of the tiny model's training steps on ``batches`` (one untimed step first)."""
    from espnet2_slap.tasks.slap import SLAPTask

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SLAPTask.build_model(task_args)
    optimizer = SLAPTask.build_optimizers(task_args, model)[0]
    model.train()
    clips, start = 0, None
    for i, batch in enumerate(batches):
        if i == 1:
            start = time.perf_counter()
        loss, _, _ = model(**batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        clips += len(batch["speech"]) if i else 0
    torch.set_num_threads(1)
    return clips / (time.perf_counter() - start)


def pipeline_table(args) -> None:
    from espnet2.train.distributed_utils import DistributedOption

    from espnet2_slap.tasks.slap import SLAPTask

    print(
        f"\npipeline: tiny {args.pipeline_model} config, ESPnet's iterator over {args.pipeline_clips} lazy_sound "
        f"utterances of {args.minutes:g}-min tracks (preprocessor, collate); clips per second of one epoch"
    )
    print("| format | loader workers | batch | pipeline | model's training steps | pipeline / model |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("wav", "flac"):
            for workers in args.workers:
                task_args = pipeline_args(args, Path(tmp), ext, workers)
                factory = SLAPTask.build_iter_factory(task_args, DistributedOption(), mode="train")
                start, clips, batches = time.perf_counter(), 0, []
                for _, batch in factory.build_iter(1):
                    clips += len(batch["speech"])
                    if len(batches) < 12:
                        batches.append(batch)
                pipeline = clips / (time.perf_counter() - start)
                model = model_clips_per_second(task_args, batches, args.threads)
                print(
                    f"| {ext} | {workers} | {task_args.batch_size} | {pipeline:.0f} | {model:.0f} | "
                    f"{pipeline / model:.1f}x |",
                    flush=True,
                )


def main():
    args = get_parser().parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if "source" in args.sections:
        source_table(args)
    if "dump" in args.sections:
        dump_table(args)
    if "pipeline" in args.sections:
        pipeline_table(args)


def source_table(args) -> None:
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
