#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that meet untrusted or damaged input
# (fuzz/src/lib.rs): each target under libFuzzer for a fixed time, starting
# from its committed seeds (fuzz/corpus/<target>), with a memory limit so an
# unbounded allocation counts as a failure. Needs the nightly toolchain
# (`rustup toolchain list`; none can be fetched here) and cargo-fuzz, which
# this script installs into $BUSCA_HOME/tools once.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [OUT_DIR]     # defaults: 600, $BUSCA_HOME/fuzz/<date>
#   FUZZ_TARGETS="model_manifest timecode" scripts/fuzz.sh ...   # only these targets
#
# OUT_DIR/<target>.log is libFuzzer's output and OUT_DIR/<target>.json its
# summary (runs, executions, coverage, crashes). A crash is saved under
# fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/ once fixed
# and query-component/tests/fuzz_replay.rs replays it in every test run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-600}
OUT_ARG=${2:-}
set --
source scripts/setup.sh
OUT=${OUT_ARG:-$BUSCA_HOME/fuzz/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: no nightly toolchain on this machine; cargo fuzz needs one (the replay of the corpora in scripts/test.sh does not)" >&2
    exit 3
fi
if [[ ! -x $BUSCA_HOME/tools/bin/cargo-fuzz ]]; then
    echo "fuzz: installing cargo-fuzz into $BUSCA_HOME/tools" >&2
    cargo install --quiet --locked --root "$BUSCA_HOME/tools" cargo-fuzz
fi
export CARGO_TARGET_DIR="$BUSCA_HOME/target-fuzz"
cd fuzz
targets=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^busca-fuzz$')}
cargo +nightly fuzz build -O > "$OUT/build.log" 2>&1 || { tail -n 20 "$OUT/build.log" >&2; exit 1; }
status=0
for target in $targets; do
    work="$BUSCA_HOME/fuzz/corpus-$target"   # grows between runs; seeds stay in git
    mkdir -p "$work" "artifacts/$target"
    echo "fuzz: $target for ${SECONDS_PER_TARGET}s" >&2
    rc=0
    cargo +nightly fuzz run -O "$target" "$work" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 > "$OUT/$target.log" 2>&1 || rc=$?
    python3 - "$target" "$rc" "$SECONDS_PER_TARGET" "$OUT/$target.log" "artifacts/$target" > "$OUT/$target.json" <<'PY'
import json, os, re, sys
target, rc, seconds, log, artifacts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
text = open(log, errors="replace").read()
def last(pattern, cast=int):
    found = re.findall(pattern, text)
    return cast(found[-1]) if found else None
print(json.dumps({
    "target": target, "exit": rc, "seconds": seconds,
    "executions": last(r"stat::number_of_executed_units:\s*(\d+)"),
    "execs_per_s": last(r"stat::average_exec_per_sec:\s*(\d+)"),
    "peak_rss_mb": last(r"stat::peak_rss_mb:\s*(\d+)"),
    "coverage_edges": last(r"\bcov: (\d+)"),
    "features": last(r"\bft: (\d+)"),
    "corpus": last(r"\bcorp: (\d+)"),
    "crashes": sorted(os.listdir(artifacts)) if os.path.isdir(artifacts) else [],
    "kind": "crash" if "deadly signal" in text or "panicked" in text else
            "oom" if "out-of-memory" in text else "timeout" if "ERROR: libFuzzer: timeout" in text else None,
}))
PY
    cat "$OUT/$target.json" >&2
    ((rc == 0)) || status=1
done
echo "$OUT"
exit $status
