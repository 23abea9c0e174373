#!/usr/bin/env bash
# Change about FRACTION (default 5%) of a data set the way edits do: insert 1 to 16 random
# bytes at a random offset into about 5% of the files smaller than 1 MiB and into about 5% of
# the 1 MiB segments of larger files. Deterministic for a given SEED and data set. Prints a
# summary line: files, bytes, changed_files, inserts, bytes_added, bytes_touched.
#
# Usage: bench/mutate.sh PATH...
# Environment: SEED (default 2), FRACTION (default 0.05).
# Example:     bench/mutate.sh /tmp/rewind-bench/data/mixed /tmp/rewind-bench/data/tree
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

[[ $# -ge 1 ]] || die "usage: bench/mutate.sh PATH... (SEED, FRACTION from the environment)"
for p in "$@"; do [[ -d $p ]] || die "$p is not a directory"; done
if [[ -n ${BENCHDATA_DIR:-} ]]; then
    bindir=$BENCHDATA_DIR
else
    bindir=$(mktemp -d)
    trap 'rm -rf "$bindir"' EXIT
fi
bin=$(benchdata_bin "$bindir")
"$bin" mutate -seed "${SEED:-2}" -fraction "${FRACTION:-0.05}" "$@"
