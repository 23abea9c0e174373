#!/usr/bin/env bash
# Runs Rewind's whole test suite on a fresh Debian machine, as root. It installs what the
# tests need (Debian packages; Go tools through the module proxy, cached under
# $REWIND_TOOLS), then runs formatting, vet, staticcheck, the race-enabled test suite and a
# short fuzz pass over every decoder of stored bytes. Services the tests need (an S3 server,
# later PostgreSQL, MariaDB, Redis) are started by the tests themselves on loopback, on free
# ports, in temporary directories.
#
# Environment:
#   REWIND_TOOLS     where Go tools are cached (default /root/.cache/rewind-tools)
#   FUZZTIME         time per fuzz target (default 5s; 0 skips the fuzz pass)
#   REWIND_LONG=1    also run the long soak tests
set -euo pipefail
cd "$(dirname "$0")/.."

export REWIND_TOOLS="${REWIND_TOOLS:-/root/.cache/rewind-tools}"
export PATH="/usr/local/go/bin:$REWIND_TOOLS:$PATH"
export GOFLAGS="${GOFLAGS:--mod=mod}"
FUZZTIME="${FUZZTIME:-5s}"

step() { printf '\n==> %s\n' "$*"; }

step "Debian packages"
pkgs=(attr util-linux e2fsprogs postgresql mariadb-server mariadb-backup redis-server sqlite3 prometheus prometheus-alertmanager)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "ok: ${pkgs[*]}"

step "Go tools (cached in $REWIND_TOOLS)"
mkdir -p "$REWIND_TOOLS"
if [ ! -x "$REWIND_TOOLS/versitygw" ]; then
  echo "building versitygw (S3 server for the backend tests; takes a few minutes once)"
  GOBIN="$REWIND_TOOLS" GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
if [ ! -x "$REWIND_TOOLS/staticcheck" ]; then
  GOBIN="$REWIND_TOOLS" GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
export REWIND_VERSITYGW="$REWIND_TOOLS/versitygw"
echo "ok: versitygw staticcheck"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi
echo ok

step "go vet"
go vet ./...

step "staticcheck"
staticcheck ./...

step "layering"
scripts/check-layers.sh

step "go test -race"
go test -race -count=1 -timeout 30m ./...

if [ "$FUZZTIME" != "0" ]; then
  step "fuzz (each target for $FUZZTIME)"
  scripts/fuzz.sh "$FUZZTIME"
fi

step "done"
