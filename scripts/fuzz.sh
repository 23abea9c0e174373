#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time each (default 5s).
# Usage: scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-5s}"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for fz in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $fz"
    go test -run '^$' -fuzz "^${fz}\$" -fuzztime "$dur" "$pkg" >/tmp/rewind-fuzz.log 2>&1 || { cat /tmp/rewind-fuzz.log; exit 1; }
  done
done
echo "fuzz: all targets passed"
