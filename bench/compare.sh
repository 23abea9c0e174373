#!/usr/bin/env bash
# Compare Rewind with restic, Borg and cp on the same machine and data. For each tool in
# TOOLS it measures, with the page cache dropped before every phase when permitted:
#   1. first backup of the mixed data set (half random, half text)
#   2. first backup of the ~15,000-file tree, then 3. a second backup with nothing changed
#   4./5. full restore of both (checked against the source with diff -r)
#   then, after bench/mutate.sh inserts bytes into ~5% of the data,
#   6./7. the next backup of both, and the bytes it added to the repository.
# Each phase records wall time, MB/s, CPU use ((user+sys)/wall; 200% = two busy cores), peak
# RSS (GNU time's "Maximum resident set size") and repository growth. The Markdown report
# goes to stdout and to bench/results/<date>.md; logs stay in $WORK/logs.
#
# Usage: bench/compare.sh
# Environment (defaults in brackets):
#   TOOLS           tools to run, any of "restic borg rewind cp" [all four]
#   SIZE_MB         size of the mixed data set in MiB [2048]
#   SEED            data set seed [1]; the mutation uses SEED+1
#   WORK            scratch directory, must not exist yet [a new /tmp/rewind-bench.XXXXXX]
#   KEEP            1 keeps $WORK (data, repositories, logs) afterwards [0]
#   VERIFY          1 checks every restore with diff -r (not timed) [1]
#   PHASE_TIMEOUT   seconds before a phase is killed and marked "timeout" [900]
#   REWIND_BIN      Rewind binary [./rewind if present, else built from ./cmd/rewind into $WORK]
#   RESULTS_DIR     where the report is written [bench/results]
#   RESTIC_COMPRESSION, BORG_COMPRESSION, BORG_CHUNKER   see bench/README.md
# Examples:
#   bench/compare.sh                                  # full run, all tools
#   SIZE_MB=200 TOOLS="restic borg cp" bench/compare.sh
#   REWIND_BIN=$PWD/rewind TOOLS=rewind KEEP=1 bench/compare.sh
set -uo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

TOOLS=${TOOLS:-"restic borg rewind cp"}
SIZE_MB=${SIZE_MB:-2048}
SEED=${SEED:-1}
KEEP=${KEEP:-0}
VERIFY=${VERIFY:-1}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-900}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
RESTIC_COMPRESSION=${RESTIC_COMPRESSION:-auto}
BORG_COMPRESSION=${BORG_COMPRESSION:-zstd,3}
BORG_CHUNKER=${BORG_CHUNKER:-buzhash,19,23,20,4095}

[[ $SIZE_MB =~ ^[0-9]+$ && $SIZE_MB -ge 2 ]] || die "SIZE_MB must be a whole number >= 2, got '$SIZE_MB'"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is missing: apt-get install time"
for t in $TOOLS; do
    case $t in
    restic | borg | rewind | cp) ;;
    *) die "unknown tool '$t' in TOOLS: pick from restic borg rewind cp" ;;
    esac
done

if [[ -n ${WORK:-} ]]; then
    [[ -e $WORK ]] && die "WORK=$WORK already exists; pick a new directory (results are not mixed)"
    mkdir -p "$WORK" || die "cannot create WORK=$WORK"
else
    WORK=$(mktemp -d /tmp/rewind-bench.XXXXXX)
fi
WORK=$(cd "$WORK" && pwd)
[[ $KEEP == 1 ]] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/logs" "$WORK/repos" "$WORK/restore" "$WORK/cache" "$WORK/bin"

# Every tool encrypts with a password; it is a throwaway for a scratch repository.
export RESTIC_PASSWORD=rewind-bench REWIND_PASSWORD=rewind-bench BORG_PASSPHRASE=rewind-bench
export RESTIC_CACHE_DIR=$WORK/cache/restic BORG_BASE_DIR=$WORK/cache/borg
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

# --- tools -------------------------------------------------------------------------------

declare -A VERSION
ACTIVE=()
for t in $TOOLS; do
    case $t in
    restic)
        command -v restic >/dev/null || { log "restic not installed (apt-get install restic); skipping"; continue; }
        VERSION[restic]=$(restic version | head -1) ;;
    borg)
        command -v borg >/dev/null || { log "borg not installed (apt-get install borgbackup); skipping"; continue; }
        VERSION[borg]=$(borg --version) ;;
    rewind)
        if [[ -z ${REWIND_BIN:-} ]]; then
            if [[ -x $REPO_ROOT/rewind ]]; then
                REWIND_BIN=$REPO_ROOT/rewind
            else
                REWIND_BIN=$WORK/bin/rewind
                log "building $REWIND_BIN from ./cmd/rewind"
                if ! (cd "$REPO_ROOT" && go build -o "$REWIND_BIN" ./cmd/rewind) >"$WORK/logs/rewind-build.log" 2>&1; then
                    log "cannot build rewind (see $WORK/logs/rewind-build.log); skipping it"
                    VERSION[rewind]="build failed"
                    continue
                fi
            fi
        fi
        [[ -x $REWIND_BIN ]] || { log "REWIND_BIN=$REWIND_BIN is not executable; skipping rewind"; continue; }
        v=$("$REWIND_BIN" version 2>/dev/null | head -1)
        [[ -n $v ]] || v="source $(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
        VERSION[rewind]="$v, binary $REWIND_BIN built $(date -r "$REWIND_BIN" '+%Y-%m-%d %H:%M')" ;;
    cp)
        VERSION[cp]=$(cp --version | head -1) ;;
    esac
    ACTIVE+=("$t")
done
[[ ${#ACTIVE[@]} -gt 0 ]] || die "none of TOOLS='$TOOLS' can run"

tool_init() { # tool repo
    case $1 in
    restic) restic init -r "$2" --repository-version 2 ;;
    borg) borg init -e repokey-blake2 "$2" ;;
    rewind) "$REWIND_BIN" init --vault "$2" ;;
    cp) mkdir -p "$2" ;;
    esac
}

tool_backup() { # tool repo archive-name path
    case $1 in
    restic) restic backup -r "$2" --host rewind-bench --compression "$RESTIC_COMPRESSION" "$4" ;;
    borg) borg create --compression "$BORG_COMPRESSION" --chunker-params "$BORG_CHUNKER" "$2::$3" "$4" ;;
    rewind) "$REWIND_BIN" backup --vault "$2" "$4" ;;
    cp) cp -a "$4" "$2/" ;;
    esac
}

tool_restore() { # tool repo archive-name target source-path
    case $1 in
    restic) restic restore -r "$2" latest --target "$4" ;;
    borg) (cd "$4" && borg extract "$2::$3") ;;
    rewind) "$REWIND_BIN" restore --vault "$2" latest --target "$4" ;;
    cp) cp -a "$2/$(basename "$5")" "$4/" ;;
    esac
}

export -f tool_init tool_backup tool_restore
export REWIND_BIN=${REWIND_BIN:-} RESTIC_COMPRESSION BORG_COMPRESSION BORG_CHUNKER

# --- measuring ---------------------------------------------------------------------------

CAN_DROP=0
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then CAN_DROP=1; fi
drop_caches() {
    sync
    [[ $CAN_DROP == 1 ]] && echo 3 >/proc/sys/vm/drop_caches
    return 0
}

bytes_of() {
    local b
    b=$(du -sb "$1" 2>/dev/null | cut -f1)
    echo "${b:-0}"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

ROWS=$WORK/rows.tsv
PHASE_ORDER="init|first backup, mixed|first backup, tree|second backup, tree unchanged|restore, mixed|restore, tree|backup after 5% inserts, mixed|backup after 5% inserts, tree"
: >"$ROWS"

# run_phase TOOL PHASE DATA_BYTES FILES REPO CHECK_SRC CHECK_TARGET -- COMMAND...
# Times COMMAND and appends a row. CHECK_SRC/CHECK_TARGET ("" to skip) name a restore to
# verify. Returns the command's status.
run_phase() {
    local tool=$1 phase=$2 bytes=$3 files=$4 repo=$5 src=$6 target=$7
    shift 8
    local slug=${tool}-${phase// /-}
    slug=${slug//,/}
    local tf=$WORK/logs/$slug.time lf=$WORK/logs/$slug.log
    drop_caches
    local before after rc status wall user sys rss
    before=$(bytes_of "$repo")
    log "$tool: $phase"
    # The tool functions are exported, so a child bash (which timeout can run) sees them.
    /usr/bin/time -f '%e %U %S %M' -o "$tf" timeout "$PHASE_TIMEOUT" bash -c '"$@"' _ "$@" >"$lf" 2>&1
    rc=$?
    after=$(bytes_of "$repo")
    read -r wall user sys rss < <(tail -n 1 "$tf")
    case $rc in
    0) status=ok ;;
    124) status="timeout after ${PHASE_TIMEOUT}s" ;;
    *) status="failed (exit $rc, see logs/$slug.log)" ;;
    esac
    if [[ $rc == 0 && -n $src ]]; then
        if [[ $VERIFY == 1 ]]; then
            status=$(verify_restore "$src" "$target")
        else
            status="ok (not verified)"
        fi
    fi
    local added="-" repo_mib="-"
    if [[ -z $src ]]; then
        repo_mib=$(mib "$after")
        added=$(mib $((after - before)))
    fi
    awk -v OFS='\t' -v phase="$phase" -v tool="$tool" -v bytes="$bytes" -v files="$files" \
        -v wall="$wall" -v user="$user" -v sys="$sys" -v rss="$rss" -v repo="$repo_mib" \
        -v added="$added" -v status="$status" 'BEGIN {
            w = wall > 0 ? wall : 0.01
            print phase, tool, sprintf("%.1f", bytes / 1048576), files, sprintf("%.2f", wall),
                sprintf("%.1f", bytes / 1e6 / w), sprintf("%.0f%%", (user + sys) / w * 100),
                sprintf("%.1f", rss / 1024), repo, added, status
        }' >>"$ROWS"
    return "$rc"
}

# verify_restore SRC TARGET prints "ok" if a copy of SRC restored somewhere under TARGET
# (at TARGET/SRC, as restic and borg lay it out, or at TARGET/basename, or at TARGET) is
# identical to SRC, else what went wrong.
verify_restore() {
    local src=$1 target=$2 c
    for c in "$target/${src#/}" "$target/$(basename "$src")" "$target"; do
        if [[ -d $c ]] && [[ $(find "$c" -type f | head -n 1) ]]; then
            if diff -rq --no-dereference "$src" "$c" >"$WORK/logs/diff.log" 2>&1; then
                echo ok
            else
                echo "MISMATCH ($(wc -l <"$WORK/logs/diff.log") differences)"
            fi
            return
        fi
    done
    echo "MISSING (nothing restored under the target)"
}

# --- run ---------------------------------------------------------------------------------

START=$(date +%s)
DATA=$WORK/data
export BENCHDATA_DIR=$WORK/bin
SIZE_MB=$SIZE_MB SEED=$SEED "$BENCH_DIR/datasets.sh" "$DATA" || die "generating the data sets failed"
declare -A DS_BYTES DS_FILES
for ds in mixed tree; do
    DS_BYTES[$ds]=$(bytes_of "$DATA/$ds")
    DS_FILES[$ds]=$(find "$DATA/$ds" -type f | wc -l)
done

declare -A BROKEN # tool-dataset pairs whose first backup failed
for t in "${ACTIVE[@]}"; do
    repo_of() { echo "$WORK/repos/$t-$1"; }
    for ds in mixed tree; do
        if ! (tool_init "$t" "$(repo_of "$ds")" >"$WORK/logs/$t-init-$ds.log" 2>&1); then
            log "$t: init failed (see logs/$t-init-$ds.log)"
            echo -e "init\t$t\t-\t-\t-\t-\t-\t-\t-\t-\tfailed (see logs/$t-init-$ds.log)" >>"$ROWS"
            BROKEN[$t-$ds]=1
            continue
        fi
        run_phase "$t" "first backup, $ds" "${DS_BYTES[$ds]}" "${DS_FILES[$ds]}" "$(repo_of "$ds")" "" "" -- \
            tool_backup "$t" "$(repo_of "$ds")" "$ds-1" "$DATA/$ds" || BROKEN[$t-$ds]=1
    done
    if [[ -z ${BROKEN[$t-tree]:-} && $t != cp ]]; then
        run_phase "$t" "second backup, tree unchanged" "${DS_BYTES[tree]}" "${DS_FILES[tree]}" "$(repo_of tree)" "" "" -- \
            tool_backup "$t" "$(repo_of tree)" "tree-2" "$DATA/tree"
    fi
    for ds in mixed tree; do
        [[ -z ${BROKEN[$t-$ds]:-} ]] || continue
        target=$WORK/restore/$t-$ds
        mkdir -p "$target"
        run_phase "$t" "restore, $ds" "${DS_BYTES[$ds]}" "${DS_FILES[$ds]}" "$(repo_of "$ds")" "$DATA/$ds" "$target" -- \
            tool_restore "$t" "$(repo_of "$ds")" "$ds-1" "$target" "$DATA/$ds"
        rm -rf "$target"
    done
done

log "mutating the data sets (seed $((SEED + 1)))"
MUTATION=$(SEED=$((SEED + 1)) "$BENCH_DIR/mutate.sh" "$DATA/mixed" "$DATA/tree") || die "mutating the data sets failed"
for ds in mixed tree; do
    DS_BYTES[$ds]=$(bytes_of "$DATA/$ds")
done
for t in "${ACTIVE[@]}"; do
    [[ $t == cp ]] && continue # a copy has no incremental backup
    for ds in mixed tree; do
        [[ -z ${BROKEN[$t-$ds]:-} ]] || continue
        run_phase "$t" "backup after 5% inserts, $ds" "${DS_BYTES[$ds]}" "${DS_FILES[$ds]}" "$WORK/repos/$t-$ds" "" "" -- \
            tool_backup "$t" "$WORK/repos/$t-$ds" "$ds-3" "$DATA/$ds"
    done
done
ELAPSED=$(($(date +%s) - START))

# --- report ------------------------------------------------------------------------------

report() {
    echo "# Rewind comparison benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, $(uname -sr)"
    echo "- Scratch file system: $(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')"
    echo "- Page cache dropped before each phase: $([[ $CAN_DROP == 1 ]] && echo yes || echo 'no (not permitted; numbers include warm-cache effects)')"
    echo "- Data: mixed = $(mib "${DS_BYTES[mixed]}") MiB in ${DS_FILES[mixed]} files (SIZE_MB=$SIZE_MB, half random, half text, seed $SEED); tree = ${DS_FILES[tree]} files"
    echo "- Mutation (seed $((SEED + 1))): $MUTATION"
    for t in "${ACTIVE[@]}"; do
        echo "- $t: ${VERSION[$t]}"
    done
    echo "- Settings: restic repository v2, --compression $RESTIC_COMPRESSION; borg repokey-blake2, --compression $BORG_COMPRESSION, --chunker-params $BORG_CHUNKER; rewind defaults"
    echo "- Total run time: ${ELAPSED}s"
    echo
    echo "| Phase | Tool | Data MiB | Files | Wall s | MB/s | CPU | Peak RSS MiB | Repo MiB | Added MiB | Result |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    # Group rows by phase, phases in the order of PHASE_ORDER, tools in the order they ran.
    awk -F'\t' -v order="$PHASE_ORDER" 'BEGIN { n = split(order, o, "|"); for (i = 1; i <= n; i++) rank[o[i]] = i }
        { printf "%d\t%06d\t%s\n", ($1 in rank) ? rank[$1] : 0, NR, $0 }' "$ROWS" |
        sort -t $'\t' -k1,1n -k2,2n | cut -f3- |
        awk -F'\t' -v OFS=' | ' '{ $1 = $1; print "| " $0 " |" }'
    echo
    echo "MB/s is data set bytes (10^6) per wall second. CPU is (user+sys)/wall: 100% is one busy core."
    echo "Added MiB is the repository's growth during the phase (du -sb)."
}

mkdir -p "$RESULTS_DIR"
out=$RESULTS_DIR/$(date +%Y-%m-%d_%H%M%S).md
report | tee "$out"
log "report written to $out"
if [[ $KEEP == 1 ]]; then log "scratch data kept in $WORK"; fi
