#!/usr/bin/env python3
"""PySceneDetect's boundaries on the benchmark set, as a cut list CSV that
`busca-eval segments` scores the same way as ours.

    python bench/segments/pyscenedetect.py SET_DIR content|adaptive > predicted.csv
"""
import csv
import sys
from pathlib import Path

from scenedetect import AdaptiveDetector, ContentDetector, detect


def main():
    set_dir, kind = Path(sys.argv[1]), sys.argv[2]
    detector = {"content": ContentDetector, "adaptive": AdaptiveDetector}[kind]
    w = csv.writer(sys.stdout)
    w.writerow(["video", "time"])
    for video in sorted(set_dir.glob("*.mp4")):
        scenes = detect(str(video), detector())
        w.writerow([video.stem, ""])  # evaluated even with no cuts
        for start, _end in scenes[1:]:
            w.writerow([video.stem, f"{start.get_seconds():.3f}"])


if __name__ == "__main__":
    main()
