#!/usr/bin/env python3
"""busca-index end to end against the straightforward Python pipeline people
write for the same job, on the same videos and model, in one run:

- Python: ffmpeg decodes each video at the same fps straight to RGB at the
  model's size (`-vf fps=F,scale=...:flags=bicubic,crop=S:S`, a pipe),
  numpy normalises, onnxruntime (CPU provider, its default threads) embeds in
  batches of 32. Frames are only embedded: nothing is segmented or written.
- ours: `busca-index` on the same files (decode, transition detection,
  embed, classes, scenes, shots, usearch index, keyframes, a published
  bundle).

Each side runs in a process of its own (the Python pipeline in a child of
this script), so neither inherits the other's memory or threads: a ViT-L/14
session left in this process slowed the `busca-index` run after it from
13.4 to 15-17.6 s. The two alternate (Python, ours, Python, ours, ...) for
`--rounds` rounds;
each side's frames per second is its median round. Each round also times
the floor both share: the ffmpeg CLI decoding every frame of the same files
and throwing them away (`-f null`, its default threads). A pipeline that must
decode every frame (ours does, to find shot boundaries on the frame; the
Python one does, through ffmpeg's fps filter) cannot take less, so
`ceiling` is the ratio ours would reach if the whole run cost no more than
that decode. Prints one JSON object.

    python bench/python_pipeline.py --busca-index BIN --model DIR --work DIR [--fps 2] [--rounds 3] VIDEO...
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def log(*a):
    print("[python-pipeline]", *a, file=sys.stderr, flush=True)


def python_pipeline(videos, manifest, model_dir, fps, batch):
    """(frames, seconds) of the Python pipeline over `videos`."""
    import onnxruntime as ort
    image = manifest["image"]
    size = image["image_size"]
    mean = np.asarray(image["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(image["std"], dtype=np.float32)[:, None, None]
    t0 = time.perf_counter()
    sess = ort.InferenceSession(str(model_dir / image["file"]), providers=["CPUExecutionProvider"])
    frames = 0
    pending = []

    def flush():
        nonlocal pending
        if pending:
            x = ((np.stack(pending).astype(np.float32) / 255.0).transpose(0, 3, 1, 2) - mean) / std
            sess.run([image["output"]], {image["input"]: x.astype(np.float32)})
            pending = []

    if image["resize"] == "squash-bilinear":
        vf = f"fps={fps},scale={size}:{size}:flags=bilinear"
    else:
        vf = (f"fps={fps},scale={size}:{size}:force_original_aspect_ratio=increase:flags=bicubic,"
              f"crop={size}:{size}")
    for video in videos:
        proc = subprocess.Popen(["ffmpeg", "-v", "error", "-i", str(video), "-vf", vf, "-f", "rawvideo",
                                 "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
        frame_bytes = size * size * 3
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            pending.append(np.frombuffer(buf, dtype=np.uint8).reshape(size, size, 3))
            frames += 1
            if len(pending) == batch:
                flush()
        proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"ffmpeg failed on {video}")
    flush()
    return frames, time.perf_counter() - t0


def python_side(videos, model_dir, fps, batch):
    """(frames, seconds) of `python_pipeline` run in a child process."""
    out = subprocess.run([sys.executable, __file__, "--python-side", "--model", str(model_dir), "--fps", str(fps),
                          "--batch", str(batch), *map(str, videos)],
                         check=True, capture_output=True, text=True)
    got = json.loads(out.stdout)
    return got["frames"], got["seconds"]


def decode_floor(videos):
    """Seconds for the ffmpeg CLI to decode every frame of `videos` (one after
    the other, as both pipelines take them) and discard them."""
    t0 = time.perf_counter()
    for video in videos:
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-map", "0:v:0", "-f", "null", "-"], check=True)
    return time.perf_counter() - t0


def ours(busca_index, videos, model_dir, fps, work):
    """(frames embedded, seconds) of `busca-index` publishing a bundle of `videos`."""
    out = work / "bundles"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / "cache", ignore_errors=True)
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"))
    t0 = time.perf_counter()
    run = subprocess.run([str(busca_index), "--collection", "bench", "--out", str(out), "--model", str(model_dir),
                          "--fps", str(fps), "--no-progress", *map(str, videos)],
                         capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise RuntimeError(f"busca-index failed: {run.stderr[-2000:]}")
    current = (out / "bench" / "CURRENT").read_text().strip()
    manifest = json.loads((out / "bench" / "versions" / current / "manifest.json").read_text())
    return manifest["counts"]["frames"], seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", type=Path, nargs="+")
    ap.add_argument("--busca-index", type=Path)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--python-side", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.python_side:
        manifest = json.loads((a.model / "manifest.json").read_text())
        frames, seconds = python_pipeline(a.videos, manifest, a.model, a.fps, a.batch)
        print(json.dumps({"frames": frames, "seconds": seconds}))
        return
    if not a.busca_index or not a.work:
        ap.error("--busca-index and --work are required")
    a.work.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((a.model / "manifest.json").read_text())
    runs = {"python": [], "ours": []}
    floor = []
    for r in range(a.rounds):
        log(f"round {r + 1}/{a.rounds}: ffmpeg decoding every frame")
        floor.append(decode_floor(a.videos))
        log(f"round {r + 1}/{a.rounds}: Python")
        frames, s = python_side(a.videos, a.model, a.fps, a.batch)
        runs["python"].append({"frames": frames, "seconds": s, "fps": frames / s})
        log(f"round {r + 1}/{a.rounds}: busca-index")
        frames, s = ours(a.busca_index, a.videos, a.model, a.fps, a.work)
        runs["ours"].append({"frames": frames, "seconds": s, "fps": (frames or 0) / s})
    med = {k: statistics.median(x["fps"] for x in v) for k, v in runs.items()}
    floor_s = statistics.median(floor)
    ours_frames = statistics.median(x["frames"] for x in runs["ours"])
    print(json.dumps({"model_id": manifest["model_id"], "videos": [str(v) for v in a.videos], "sample_fps": a.fps,
                      "batch": a.batch, "runs": runs, "median_frames_per_s": med,
                      "decode_floor_s": floor_s, "decode_floor_runs_s": floor,
                      "median_seconds": {k: statistics.median(x["seconds"] for x in v) for k, v in runs.items()},
                      "ceiling": ours_frames / floor_s / med["python"] if med["python"] and floor_s else None,
                      "ratio": med["ours"] / med["python"] if med["python"] else None}, indent=1))


if __name__ == "__main__":
    main()
