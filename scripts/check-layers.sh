#!/usr/bin/env bash
# Enforces the import layering of docs/ARCHITECTURE.md with `go list`:
# - backends import nothing of the vault format (vault, pack, index, seal, chunker);
# - plan, runbook and errs import no other internal package (but errs);
# - protect/<kind> never imports catalog, events or api;
# - catalog (the records and the Store contract) imports only errs.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0
deps() { go list -f '{{join .Imports "\n"}}' "$1" 2>/dev/null | grep "^$mod/internal/" || true; }
for pkg in $(go list ./internal/... 2>/dev/null); do
  rel=${pkg#"$mod/"}
  for d in $(deps "$pkg"); do
    drel=${d#"$mod/"}
    case "$rel" in
      internal/vault/backend*)
        case "$drel" in internal/vault/backend*|internal/errs|internal/testenv*) ;; *) echo "layering: $rel imports $drel"; fail=1;; esac ;;
      internal/plan*|internal/errs*|internal/catalog)
        case "$drel" in internal/errs) ;; *) echo "layering: $rel imports $drel"; fail=1;; esac ;;
      internal/runbook)
        case "$drel" in internal/errs|internal/runbook*) ;; *) echo "layering: $rel imports $drel"; fail=1;; esac ;;
      internal/protect/*)
        case "$drel" in internal/catalog*|internal/events*|internal/api*) echo "layering: $rel imports $drel"; fail=1;; esac ;;
    esac
  done
done
[ $fail -eq 0 ] && echo "layering ok"
exit $fail
