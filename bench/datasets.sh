#!/usr/bin/env bash
# Generate the benchmark data sets into OUTDIR, deterministically from SEED:
#   OUTDIR/mixed  SIZE_MB MiB, half seeded random bytes, half generated text
#   OUTDIR/tree   about 15,000 files: a copy of TREE_SRC's src, test, misc, api, doc and lib
#
# Usage: bench/datasets.sh OUTDIR
# Environment: SIZE_MB (default 2048), SEED (default 1), TREE_SRC (default /usr/local/go),
#              FILE_MB (largest mixed file, default 256).
# Example:     SIZE_MB=200 bench/datasets.sh /tmp/rewind-bench/data
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

[[ $# -eq 1 ]] || die "usage: bench/datasets.sh OUTDIR (SIZE_MB, SEED, TREE_SRC from the environment)"
out=$1
SIZE_MB=${SIZE_MB:-2048}
SEED=${SEED:-1}
FILE_MB=${FILE_MB:-256}
TREE_SRC=${TREE_SRC:-/usr/local/go}
[[ $SIZE_MB =~ ^[0-9]+$ && $SIZE_MB -ge 2 ]] || die "SIZE_MB must be a whole number >= 2, got '$SIZE_MB'"
[[ -d $TREE_SRC/src ]] || die "TREE_SRC=$TREE_SRC has no src directory; point it at a Go installation"
[[ -e $out/mixed || -e $out/tree ]] && die "$out already holds a data set; remove it or pick another OUTDIR"

bin=$(benchdata_bin "${BENCHDATA_DIR:-$out/.bin}")
mkdir -p "$out"
log "generating $SIZE_MB MiB mixed data set (seed $SEED) in $out/mixed"
"$bin" gen -out "$out/mixed" -seed "$SEED" -size-mb "$SIZE_MB" -file-mb "$FILE_MB" >&2

log "copying the file tree from $TREE_SRC into $out/tree"
mkdir -p "$out/tree"
for d in src test misc api doc lib; do
    [[ -d $TREE_SRC/$d ]] && cp -a "$TREE_SRC/$d" "$out/tree/"
done
files=$(find "$out/tree" -type f | wc -l)
log "tree: $files files, $(du -sm "$out/tree" | cut -f1) MiB"
