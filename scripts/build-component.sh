#!/usr/bin/env bash
# Builds the edge components for wasm32-wasip2 (release profile: opt-level 3,
# LTO, simd128) into query-component/dist/ (where spin.toml looks) and prints
# the query component's path as the last line of output.
#
#   scripts/build-component.sh
#       query_component.wasm: the query component, for hosts that provide
#       wasi:nn (busca-serve)
#   scripts/build-component.sh --edge [--model DIR] [--bundles DIR]
#       also nn_provider.wasm (the wasi:nn provider over tract, nn-provider/),
#       nn_provider_remote.wasm (the same exports forwarding inference to an
#       encoder endpoint, for towers too large to ship), and the two
#       components for hosts without wasi:nn (Spin, Fermyon, stock
#       `wasmtime serve`), made by scripts/compose-edge.sh:
#         buscaescenas-edge.wasm: self-contained, the provider pre-initialized
#           with the model in DIR (default models/tiny) (spin.toml)
#         buscaescenas-edge-remote.wasm: with the remote provider
#           (spin-remote.toml)
#       each with the query component pre-initialized with the bundles root
#       given by --bundles (else it loads the bundles on first request)
#
# Env: CARGO_TARGET_DIR (default $BUSCA_HOME/target); the provider builds in
# $BUSCA_HOME/target-nn-provider (its own lock file, and tract is built once
# there and kept). --edge needs the wasmtime CLI and wasm-tools: when they are
# not there it sources scripts/setup.sh --edge, which installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
BUSCA_HOME="${BUSCA_HOME:-$HOME/.cache/buscaescenas}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BUSCA_HOME/target}"

EDGE=0 MODEL=models/tiny BUNDLES=""
while (($#)); do
    case $1 in
        --edge) EDGE=1 ;;
        --model) MODEL=${2:?--model needs a directory}; shift ;;
        --bundles) BUNDLES=${2:?--bundles needs a directory}; shift ;;
        -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-component.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if ((EDGE)) && ! { command -v wasmtime && [[ -x ${BUSCA_WASM_TOOLS:-} ]]; } >/dev/null; then
    # Run on its own (by `spin build`, say): bring the tools --edge needs.
    source scripts/setup.sh --edge >&2
fi
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2 >&2
mkdir -p query-component/dist
size() { echo "$(du -h "$1" | cut -f1) ($(stat -c %s "$1") bytes)"; }

(cd query-component && cargo build --release --lib --target wasm32-wasip2 >&2)
built="$CARGO_TARGET_DIR/wasm32-wasip2/release/query_component.wasm"
cp "$built" query-component/dist/query_component.wasm
echo "component: $(size "$built")" >&2

if ((EDGE)); then
    provider_target="$BUSCA_HOME/target-nn-provider"
    (cd nn-provider && CARGO_TARGET_DIR="$provider_target" cargo build --release --lib --target wasm32-wasip2 >&2)
    cp "$provider_target/wasm32-wasip2/release/nn_provider.wasm" query-component/dist/nn_provider.wasm
    echo "wasi:nn provider: $(size query-component/dist/nn_provider.wasm)" >&2
    remote_target="$BUSCA_HOME/target-nn-provider-remote"
    (cd nn-provider && CARGO_TARGET_DIR="$remote_target" cargo build --release --lib --target wasm32-wasip2 \
        --no-default-features --features remote >&2)
    cp "$remote_target/wasm32-wasip2/release/nn_provider.wasm" query-component/dist/nn_provider_remote.wasm
    echo "remote wasi:nn provider: $(size query-component/dist/nn_provider_remote.wasm)" >&2
    bundles=()
    [[ -n $BUNDLES ]] && bundles=(--bundles "$BUNDLES")
    scripts/compose-edge.sh --query query-component/dist/query_component.wasm "${bundles[@]}" \
        --provider query-component/dist/nn_provider.wasm --model "$MODEL" \
        --out query-component/dist/buscaescenas-edge.wasm > /dev/null
    scripts/compose-edge.sh --query query-component/dist/query_component.wasm "${bundles[@]}" \
        --provider query-component/dist/nn_provider_remote.wasm --remote \
        --out query-component/dist/buscaescenas-edge-remote.wasm > /dev/null
fi
echo "$built"
