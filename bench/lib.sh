# shellcheck shell=bash
# Shared helpers for Rewind's benchmark scripts; sourced, not run.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# benchdata_bin prints the path of the data helper, building it once into $1 (a directory).
benchdata_bin() {
    local bindir=$1
    mkdir -p "$bindir"
    if [[ ! -x $bindir/benchdata ]]; then
        (cd "$REPO_ROOT" && go build -o "$bindir/benchdata" ./bench/benchdata) ||
            die "cannot build bench/benchdata (is Go installed? run from a checkout of Rewind)"
    fi
    echo "$bindir/benchdata"
}
