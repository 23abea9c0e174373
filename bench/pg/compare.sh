#!/usr/bin/env bash
# Compare Rewind with pgBackRest on one PostgreSQL 15 cluster filled by pgbench. It measures,
# with the page cache dropped before every timed phase when permitted:
#   1. a full base backup with each tool (pgBackRest "backup --type=full", "rewind backup")
#   2. a second backup after updating 1% of pgbench_accounts (pgBackRest "--type=incr",
#      Rewind's next base backup, deduplicated against the first)
#   3. a restore of each tool's latest backup into an empty directory; then, not timed,
#      PostgreSQL is started on each restored directory and count(*) of pgbench_accounts is
#      compared with the source
#   4. WAL shipping: "rewind protect" streams WAL while pgbench writes for LOAD_SECONDS; the
#      source's pg_current_wal_lsn() and the flush position Rewind confirms are sampled every
#      SAMPLE_INTERVAL seconds, giving the lag (max, p50, p95) and the WAL rate.
# Each phase records wall time, MB/s (data directory bytes without pg_wal, 10^6 per wall
# second), CPU ((user+sys)/wall of the tool; 200% = two busy cores), the PostgreSQL server's
# CPU over the phase, peak RSS and repository size. The Markdown report goes to stdout and to
# bench/results/<date>_pg.md; logs stay in $WORK/logs with KEEP=1.
#
# Needs: PostgreSQL 15 server binaries (PG_BIN), GNU time, Go (to build Rewind when REWIND_BIN
# is unset) and pgBackRest, which is installed with apt-get when missing (as root). PostgreSQL
# refuses to run as root: run as root and the clusters, pgbench and pgBackRest run as the
# "postgres" user (PG_USER) through runuser, Rewind as root; run as another user and
# everything runs as that user.
#
# Usage: bench/pg/compare.sh
# Environment (defaults in brackets):
#   SCALE             pgbench scale factor [150, about 2.3 GB of data directory]
#   PROCESSES         pgBackRest process-max, and GOMAXPROCS of Rewind [2]
#   LOAD_SECONDS      length of the pgbench write load of the WAL phase [60]
#   LOAD_CLIENTS      pgbench clients of the WAL phase [4]
#   SAMPLE_INTERVAL   seconds between two samples of the WAL positions [0.5]
#   WORK              scratch directory, must not exist yet [a new /tmp/rewind-pgbench.XXXXXX]
#   KEEP              1 keeps $WORK (clusters, repositories, logs) afterwards [0]
#   PHASE_TIMEOUT     seconds before a timed phase is killed and marked "timeout" [1800]
#   REWIND_BIN        Rewind binary [built from ./cmd/rewind into $WORK/bin]
#   RESULTS_DIR       where the report is written [bench/results]
#   RESULTS_NAME      file name of the report [<date>_pg.md]
#   NOTE              a sentence printed at the top of the report, e.g. why a run is special []
#   PG_BIN            PostgreSQL binaries [/usr/lib/postgresql/15/bin]
#   PG_USER           user that runs PostgreSQL and pgBackRest when run as root [postgres]
#   PGBR_COMPRESS     pgBackRest compress-type [zst]; PGBR_COMPRESS_LEVEL [1]
#   PGBR_CIPHER       pgBackRest repo1-cipher-type, aes-256-cbc or none [aes-256-cbc]
# Examples:
#   bench/pg/compare.sh                                      # full run, scale 150
#   SCALE=10 LOAD_SECONDS=15 bench/pg/compare.sh             # smoke run, about a minute
#   REWIND_BIN=$PWD/rewind KEEP=1 SCALE=50 bench/pg/compare.sh
set -uo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"

SCALE=${SCALE:-150}
PROCESSES=${PROCESSES:-2}
LOAD_SECONDS=${LOAD_SECONDS:-60}
LOAD_CLIENTS=${LOAD_CLIENTS:-4}
SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-0.5}
KEEP=${KEEP:-0}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-1800}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
RESULTS_NAME=${RESULTS_NAME:-$(date +%Y-%m-%d_%H%M%S)_pg.md}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=${PG_USER:-postgres}
PGBR_COMPRESS=${PGBR_COMPRESS:-zst}
PGBR_COMPRESS_LEVEL=${PGBR_COMPRESS_LEVEL:-1}
PGBR_CIPHER=${PGBR_CIPHER:-aes-256-cbc}
RESOURCE=bench
SLOT=rewind_bench
STANZA=bench

# --- checks ------------------------------------------------------------------------------

whole() { [[ $2 =~ ^[0-9]+$ && $2 -ge $3 ]] || die "$1 must be a whole number >= $3, got '$2'"; }
whole SCALE "$SCALE" 1
whole PROCESSES "$PROCESSES" 1
whole LOAD_SECONDS "$LOAD_SECONDS" 5
whole LOAD_CLIENTS "$LOAD_CLIENTS" 1
whole PHASE_TIMEOUT "$PHASE_TIMEOUT" 10
if ! [[ $SAMPLE_INTERVAL =~ ^[0-9]*\.?[0-9]+$ ]] || ! awk -v s="$SAMPLE_INTERVAL" 'BEGIN { exit !(s >= 0.05 && s <= 10) }'; then
    die "SAMPLE_INTERVAL must be a number of seconds between 0.05 and 10, got '$SAMPLE_INTERVAL'"
fi
case $PGBR_COMPRESS in none | bz2 | gz | lz4 | zst) ;; *) die "PGBR_COMPRESS must be one of none bz2 gz lz4 zst, got '$PGBR_COMPRESS'" ;; esac
case $PGBR_CIPHER in none | aes-256-cbc) ;; *) die "PGBR_CIPHER must be none or aes-256-cbc, got '$PGBR_CIPHER'" ;; esac
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is missing: apt-get install time"
for b in initdb pg_ctl postgres pgbench psql; do
    [[ -x $PG_BIN/$b ]] || die "$PG_BIN/$b is missing: install postgresql-15 or point PG_BIN at PostgreSQL 15's bin directory"
done
PSQL=$PG_BIN/psql

if [[ $(id -u) == 0 ]]; then
    id -u "$PG_USER" >/dev/null 2>&1 || die "user '$PG_USER' does not exist: PostgreSQL refuses to run as root, so it runs as PG_USER (create it, or install postgresql-15)"
    command -v runuser >/dev/null || die "runuser is missing (util-linux): it runs PostgreSQL as $PG_USER"
    as_pg() { runuser -u "$PG_USER" -- "$@"; }
else
    PG_USER=$(id -un)
    as_pg() { "$@"; }
fi

if ! command -v pgbackrest >/dev/null; then
    [[ $(id -u) == 0 ]] || die "pgbackrest is not installed and only root can install it: apt-get install pgbackrest"
    log "pgbackrest is not installed: installing the Debian package (apt-get install -y pgbackrest)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y pgbackrest >&2 ||
        die "apt-get install pgbackrest failed; install it by hand and run again"
fi

if [[ -n ${WORK:-} ]]; then
    [[ -e $WORK ]] && die "WORK=$WORK already exists; pick a new directory (results are not mixed)"
    mkdir -p "$WORK" || die "cannot create WORK=$WORK"
else
    WORK=$(mktemp -d /tmp/rewind-pgbench.XXXXXX)
fi
WORK=$(cd "$WORK" && pwd)
chmod 755 "$WORK"
# PG holds everything PostgreSQL and pgBackRest write; it belongs to PG_USER.
PG=$WORK/pg
mkdir -p "$WORK/logs" "$WORK/bin" "$PG/sock" "$PG/pgbackrest/log" "$PG/pgbackrest/lock" "$PG/pgbackrest/spool" "$PG/restore"
# Server logs go to $WORK/logs too, so PG_USER owns it.
chown -R "$PG_USER" "$PG" "$WORK/logs" || die "cannot give $PG and $WORK/logs to $PG_USER"
chmod 700 "$PG/sock"
[[ ${#PG} -le 70 ]] || die "WORK=$WORK is too long: PostgreSQL's socket path under it must stay under 107 bytes; pick a shorter WORK"
SRC=$PG/src
VAULT=$WORK/vault
PGBR_REPO=$PG/pgbackrest/repo
PGBR_CONF=$PG/pgbackrest/pgbackrest.conf

avail_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
need_kb=$((SCALE * 16 * 1024 * 5)) # source, two repositories, two restores
[[ $avail_kb -ge $need_kb ]] || die "about $((need_kb / 1024)) MiB of free space is needed under $WORK for SCALE=$SCALE, only $((avail_kb / 1024)) MiB is free: pick another WORK or a smaller SCALE"

export REWIND_PASSWORD=rewind-bench
REWIND_GOMAXPROCS=$PROCESSES

# --- cleanup: stop what this script started ----------------------------------------------

STARTED_DIRS=()     # data directories of running clusters
BG_PIDS=()          # background processes (protect, sampler)
cleanup() {
    local p d
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for d in "${STARTED_DIRS[@]}"; do
        [[ -f $d/postmaster.pid ]] && as_pg "$PG_BIN/pg_ctl" -D "$d" stop -m immediate >/dev/null 2>&1
    done
    if [[ $KEEP == 1 ]]; then
        log "scratch data kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- PostgreSQL helpers ------------------------------------------------------------------

# free_port prints a TCP port nothing listens on at 127.0.0.1, from 25432 up.
free_port() {
    local p
    for ((p = ${1:-25432}; p < 26432; p++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port between ${1:-25432} and 26431 on 127.0.0.1"
}

# pg_start DIR PORT LOG [EXTRA -c settings...] starts a cluster on DIR (sockets in $PG/sock)
# and waits until it accepts connections.
pg_start() {
    local dir=$1 port=$2 logf=$3
    shift 3
    local opts="-p $port -k $PG/sock -c listen_addresses=127.0.0.1 $*"
    STARTED_DIRS+=("$dir")
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$logf" -w -t 600 -o "$opts" start >/dev/null 2>&1 ||
        { log "PostgreSQL did not start on $dir (see $logf):"; tail -n 20 "$logf" >&2; return 1; }
}

pg_stop() {
    as_pg "$PG_BIN/pg_ctl" -D "$1" -w -t 300 stop -m fast >/dev/null 2>&1
}

# sql PORT QUERY prints the unaligned result of QUERY on database postgres.
sql() {
    "$PSQL" -X -At -v ON_ERROR_STOP=1 -h "$PG/sock" -p "$1" -U "$PG_USER" -d postgres -c "$2"
}

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

# datadir_bytes DIR: the data directory without pg_wal, which neither tool copies as files.
datadir_bytes() {
    echo $(($(bytes_of "$1") - $(bytes_of "$1/pg_wal")))
}

CLK_TCK=$(getconf CLK_TCK)
# server_ticks PID prints the CPU ticks of the postmaster PID and its processes, each with
# the children it has reaped (cutime, cstime): archive_command's programs, and walsenders and
# backends that ended, are included. The difference of two readings is the cluster's CPU
# between them. (cat, unlike awk, reads on past a process that ends meanwhile.)
server_ticks() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v pm="$1" '{
            pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
            if (pid == pm || f[2] == pm) t += f[12] + f[13] + f[14] + f[15]
        } END { printf "%d\n", t }'
}
SRC_PM=""

ROWS=$WORK/rows.tsv
: >"$ROWS"

# add_row PHASE TOOL SECONDS MBPS CPU SERVERCPU RSS_MIB REPO_MIB ADDED_MIB RESULT
add_row() {
    local IFS=$'\t'
    echo "$*" >>"$ROWS"
}

# run_phase TOOL PHASE BYTES REPO -- COMMAND... times COMMAND (after a sync and a page-cache
# drop), appends a row and returns the command's status. REPO "" (a restore) skips the
# repository size and the source server's CPU.
run_phase() {
    local tool=$1 phase=$2 bytes=$3 repo=$4
    shift 5
    local slug=${tool}-${phase// /-}
    slug=${slug//[^A-Za-z0-9_-]/}
    local tf=$WORK/logs/$slug.time lf=$WORK/logs/$slug.log
    drop_caches
    local before=0 after=0 rc status wall user sys rss st0 st1
    [[ -n $repo ]] && before=$(bytes_of "$repo")
    st0=$(server_ticks "$SRC_PM")
    log "$tool: $phase"
    # The helpers are exported functions, so a child bash (which timeout can run) sees them.
    /usr/bin/time -f '%e %U %S %M' -o "$tf" timeout "$PHASE_TIMEOUT" bash -c '"$@"' _ "$@" >"$lf" 2>&1
    rc=$?
    st1=$(server_ticks "$SRC_PM")
    [[ -n $repo ]] && after=$(bytes_of "$repo")
    read -r wall user sys rss < <(tail -n 1 "$tf")
    case $rc in
    0) status=ok ;;
    124) status="timeout after ${PHASE_TIMEOUT}s" ;;
    *) status="failed (exit $rc, see logs/$slug.log)" ;;
    esac
    # A restore neither reads the source nor grows a repository.
    local repo_mib=- added=- srv=-
    if [[ -n $repo ]]; then
        repo_mib=$(mib "$after")
        added=$(mib $((after - before)))
        srv=$((st1 - st0))
    fi
    awk -v OFS='\t' -v phase="$phase" -v tool="$tool" -v bytes="$bytes" -v wall="$wall" -v user="$user" \
        -v sys="$sys" -v rss="$rss" -v srv="$srv" -v tck="$CLK_TCK" -v repo="$repo_mib" -v added="$added" \
        -v status="$status" 'BEGIN {
            w = wall > 0 ? wall : 0.01
            print phase, tool, sprintf("%.2f", wall), sprintf("%.1f", bytes / 1e6 / w),
                sprintf("%.0f%%", (user + sys) / w * 100), srv == "-" ? "-" : sprintf("%.0f%%", srv / tck / w * 100),
                sprintf("%.1f", rss / 1024), repo, added, status
        }' >>"$ROWS"
    return "$rc"
}

# set_last_result RESULT replaces the result column of the last row.
set_last_result() {
    local tmp=$ROWS.tmp
    awk -F'\t' -v OFS='\t' -v r="$1" '{ if (NR == n) $10 = r; print }' n="$(wc -l <"$ROWS")" "$ROWS" >"$tmp" && mv "$tmp" "$ROWS"
}

# --- tools -------------------------------------------------------------------------------

if [[ -z ${REWIND_BIN:-} ]]; then
    REWIND_BIN=$WORK/bin/rewind
    log "building $REWIND_BIN from ./cmd/rewind"
    (cd "$REPO_ROOT" && go build -o "$REWIND_BIN" ./cmd/rewind) >"$WORK/logs/rewind-build.log" 2>&1 ||
        die "cannot build rewind: $(tail -n 5 "$WORK/logs/rewind-build.log")"
fi
[[ -x $REWIND_BIN ]] || die "REWIND_BIN=$REWIND_BIN is not an executable file"
REWIND_VERSION="source $(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown), binary $REWIND_BIN built $(date -r "$REWIND_BIN" '+%Y-%m-%d %H:%M')"
PGBR_VERSION=$(pgbackrest version)
PG_VERSION=$("$PG_BIN/postgres" --version)

rewind() { GOMAXPROCS=$REWIND_GOMAXPROCS "$REWIND_BIN" "$@"; }
pgbr() { as_pg pgbackrest --config="$PGBR_CONF" --stanza="$STANZA" "$@"; }
export -f rewind pgbr as_pg
export REWIND_BIN REWIND_GOMAXPROCS PG_USER PGBR_CONF STANZA

# --- 1. the source cluster ---------------------------------------------------------------

START=$(date +%s)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
PORT=$(free_port 25432)
SRC_URL="postgres://$PG_USER@127.0.0.1:$PORT/?sslmode=disable"

log "initdb $SRC (port $PORT)"
as_pg "$PG_BIN/initdb" -D "$SRC" --auth=trust -U "$PG_USER" >"$WORK/logs/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -n 5 "$WORK/logs/initdb.log")"

cat >"$PGBR_CONF" <<EOF
[global]
repo1-path=$PGBR_REPO
repo1-retention-full=2
repo1-cipher-type=$PGBR_CIPHER
$([[ $PGBR_CIPHER != none ]] && echo "repo1-cipher-pass=rewind-bench")
compress-type=$PGBR_COMPRESS
compress-level=$PGBR_COMPRESS_LEVEL
process-max=$PROCESSES
start-fast=y
log-path=$PG/pgbackrest/log
lock-path=$PG/pgbackrest/lock
spool-path=$PG/pgbackrest/spool
log-level-console=warn
log-level-file=detail

[$STANZA]
pg1-path=$SRC
pg1-port=$PORT
pg1-socket-path=$PG/sock
pg1-user=$PG_USER
EOF
chown "$PG_USER" "$PGBR_CONF"
chmod 600 "$PGBR_CONF"

# wal_keep_size keeps the WAL from Rewind's last base backup on the server until the WAL
# phase starts streaming from there.
cat >>"$SRC/postgresql.conf" <<EOF

# rewind bench/pg/compare.sh
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 1024MB
max_wal_size = 4GB
archive_mode = on
archive_command = 'pgbackrest --config=$PGBR_CONF --stanza=$STANZA archive-push %p'
EOF
pg_start "$SRC" "$PORT" "$WORK/logs/postgres-src.log" || die "the source cluster did not start"
SRC_PM=$(head -n 1 "$SRC/postmaster.pid")

log "pgbench -i -s $SCALE"
as_pg "$PG_BIN/pgbench" -i -s "$SCALE" -h "$PG/sock" -p "$PORT" -U "$PG_USER" postgres >"$WORK/logs/pgbench-init.log" 2>&1 ||
    die "pgbench -i failed: $(tail -n 5 "$WORK/logs/pgbench-init.log")"
sql "$PORT" "CHECKPOINT" >/dev/null

pgbr stanza-create >"$WORK/logs/pgbackrest-stanza-create.log" 2>&1 ||
    die "pgbackrest stanza-create failed: $(tail -n 5 "$WORK/logs/pgbackrest-stanza-create.log")"
pgbr check >"$WORK/logs/pgbackrest-check.log" 2>&1 ||
    die "pgbackrest check failed (is archive_command working?): $(tail -n 5 "$WORK/logs/pgbackrest-check.log")"
rewind init --vault "$VAULT" >"$WORK/logs/rewind-init.log" 2>&1 ||
    die "rewind init failed: $(tail -n 5 "$WORK/logs/rewind-init.log")"

SRC_COUNT=$(sql "$PORT" "SELECT count(*) FROM pgbench_accounts") || die "cannot count pgbench_accounts on the source"
DB_SIZE=$(sql "$PORT" "SELECT sum(pg_database_size(oid)) FROM pg_database")
DATA_BYTES=$(datadir_bytes "$SRC")
log "source: $SRC_COUNT accounts, databases $(mib "$DB_SIZE") MiB, data directory without pg_wal $(mib "$DATA_BYTES") MiB"

# --- 2. base backups ---------------------------------------------------------------------

declare -A OK
run_phase pgbackrest "full backup" "$DATA_BYTES" "$PGBR_REPO" -- pgbr backup --type=full && OK[pgbackrest]=1
run_phase rewind "full backup" "$DATA_BYTES" "$VAULT" -- rewind backup --vault "$VAULT" --resource "$RESOURCE" "$SRC_URL" && OK[rewind]=1

CHANGED=$((SCALE * 1000))
log "updating $CHANGED of $SRC_COUNT accounts (1%)"
sql "$PORT" "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= $CHANGED" >/dev/null ||
    die "the update before the second backups failed"
# Vacuum now rather than let autovacuum run during a timed phase.
if ! sql "$PORT" "VACUUM ANALYZE pgbench_accounts" >/dev/null || ! sql "$PORT" "CHECKPOINT" >/dev/null; then
    die "VACUUM or CHECKPOINT before the second backups failed"
fi
DATA_BYTES2=$(datadir_bytes "$SRC")
if [[ -n ${OK[pgbackrest]:-} ]]; then
    run_phase pgbackrest "second backup, 1% of rows updated" "$DATA_BYTES2" "$PGBR_REPO" -- pgbr backup --type=incr
fi
if [[ -n ${OK[rewind]:-} ]]; then
    run_phase rewind "second backup, 1% of rows updated" "$DATA_BYTES2" "$VAULT" -- \
        rewind backup --vault "$VAULT" --resource "$RESOURCE" "$SRC_URL" || OK[rewind]=""
fi

# --- 3. restores -------------------------------------------------------------------------

# check_restore TOOL DIR starts PostgreSQL on DIR, waits for the end of recovery, compares
# count(*) of pgbench_accounts with the source, stops it, and sets VERDICT. (Not run in a
# subshell, so that the cleanup knows about the cluster it starts.)
check_restore() {
    local tool=$1 dir=$2 port logf t0 n in_rec
    logf=$WORK/logs/postgres-restored-$tool.log
    if [[ $(stat -c %U "$dir") != "$PG_USER" ]]; then
        log "$tool: the restored directory belongs to $(stat -c %U "$dir"), not $PG_USER: chown -R before starting"
        chown -R "$PG_USER" "$dir"
    fi
    port=$(free_port $((PORT + 1)))
    t0=$(date +%s.%N)
    if ! pg_start "$dir" "$port" "$logf" -c archive_mode=off; then
        VERDICT="PostgreSQL did not start (see logs/${logf##*/})"
        return
    fi
    for ((n = 0; n < 1200; n++)); do
        in_rec=$(sql "$port" "SELECT pg_is_in_recovery()" 2>/dev/null)
        [[ $in_rec == f ]] && break
        sleep 0.5
    done
    local rec_s
    rec_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [[ $in_rec != f ]]; then
        VERDICT="still recovering after 600s (see logs/${logf##*/})"
    else
        n=$(sql "$port" "SELECT count(*) FROM pgbench_accounts" 2>&1)
        if [[ $n == "$SRC_COUNT" ]]; then
            VERDICT="ok: $n accounts, as the source; started and recovered in ${rec_s}s"
        else
            VERDICT="MISMATCH: count(*) = $n, source $SRC_COUNT"
        fi
    fi
    pg_stop "$dir"
}

if [[ -n ${OK[pgbackrest]:-} ]]; then
    target=$PG/restore/pgbackrest
    as_pg mkdir -m 700 "$target"
    if run_phase pgbackrest "restore latest" "$DATA_BYTES2" "" -- pgbr restore --pg1-path="$target"; then
        check_restore pgbackrest "$target"
        set_last_result "$VERDICT"
    fi
    rm -rf "$target"
fi
if [[ -n ${OK[rewind]:-} ]]; then
    target=$PG/restore/rewind
    if run_phase rewind "restore latest" "$DATA_BYTES2" "" -- \
        rewind restore --vault "$VAULT" latest --resource "$RESOURCE" --target "$target"; then
        check_restore rewind "$target"
        set_last_result "$VERDICT"
    fi
    rm -rf "$target"
fi

# --- 4. WAL shipping under load ----------------------------------------------------------

# analyze_lag SAMPLES FROM TO prints "max p50 p95 n unpassed rate_mbs wal_mib": for every
# sample taken between FROM and TO (epoch seconds) of the current LSN, how long until a
# sample shows the confirmed flush position at or past it.
analyze_lag() {
    awk -F'|' -v from="$2" -v to="$3" '
        NF >= 3 && $3 != "" { n++; t[n] = $1; cur[n] = $2; fl[n] = $3 }
        END {
            j = 1; m = 0; un = 0
            for (i = 1; i <= n; i++) {
                if (t[i] < from || t[i] > to) continue
                if (!first) { first = i }
                last = i
                if (j < i) j = i
                while (j <= n && fl[j] < cur[i]) j++
                if (j > n) { un++; continue }
                lag[++m] = t[j] - t[i]
            }
            if (m == 0) { print "- - - 0", un, "- -"; exit }
            # insertion sort is fine for a few thousand samples
            for (a = 2; a <= m; a++) { v = lag[a]; b = a - 1; while (b >= 1 && lag[b] > v) { lag[b + 1] = lag[b]; b-- } lag[b + 1] = v }
            p50 = lag[int((m - 1) * 0.50) + 1]; p95 = lag[int((m - 1) * 0.95) + 1]
            dt = t[last] - t[first]; wal = cur[last] - cur[first]
            printf "%.2f %.2f %.2f %d %d %.2f %.1f\n", lag[m], p50, p95, m, un, (dt > 0 ? wal / 1e6 / dt : 0), wal / 1048576
        }' "$1"
}

LAG_SUMMARY=""
PGBENCH_TPS="-"
if [[ -n ${OK[rewind]:-} ]]; then
    # pgBackRest's archive_command would compete for the CPU while only Rewind is measured.
    if ! sql "$PORT" "ALTER SYSTEM SET archive_command = '/bin/true'" >/dev/null || ! sql "$PORT" "SELECT pg_reload_conf()" >/dev/null; then
        die "cannot switch archive_command off for the WAL phase"
    fi
    SAMPLES=$WORK/logs/wal-samples.txt
    PLOG=$WORK/logs/rewind-protect.log
    drop_caches
    st0=$(server_ticks "$SRC_PM")
    before=$(bytes_of "$VAULT")
    log "rewind: protect, then pgbench -T $LOAD_SECONDS -c $LOAD_CLIENTS"
    GOMAXPROCS=$REWIND_GOMAXPROCS /usr/bin/time -f '%e %U %S %M' -o "$WORK/logs/rewind-protect.time" \
        "$REWIND_BIN" protect --vault "$VAULT" --resource "$RESOURCE" --slot "$SLOT" --json "$SRC_URL" >"$PLOG" 2>&1 &
    TIME_PID=$!
    BG_PIDS+=("$TIME_PID")
    # Ready: the slot is active and Rewind has confirmed the server's position.
    ready=0
    for ((n = 0; n < 600; n++)); do
        kill -0 "$TIME_PID" 2>/dev/null || break
        r=$(sql "$PORT" "SELECT s.active AND r.flush_lsn >= pg_current_wal_lsn() FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = '$SLOT'" 2>/dev/null)
        if [[ $r == t ]]; then ready=1; break; fi
        sleep 0.5
    done
    if [[ $ready != 1 ]]; then
        why="protect did not catch up with the server within 300s"
        kill -0 "$TIME_PID" 2>/dev/null || why="protect exited before streaming"
        add_row "WAL shipping under load" rewind - - - - - - - "$why (see logs/${PLOG##*/})"
    else
        QUERY="SELECT extract(epoch FROM clock_timestamp()), pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'), pg_wal_lsn_diff(coalesce(r.flush_lsn, s.restart_lsn), '0/0') FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = '$SLOT';"
        printf '%s\n\\watch %s\n' "$QUERY" "$SAMPLE_INTERVAL" |
            "$PSQL" -X -At -h "$PG/sock" -p "$PORT" -U "$PG_USER" -d postgres >"$SAMPLES" 2>"$WORK/logs/wal-sampler.err" &
        SAMPLER_PID=$!
        BG_PIDS+=("$SAMPLER_PID")
        sleep 1
        LOAD_FROM=$(date +%s.%N)
        as_pg "$PG_BIN/pgbench" -T "$LOAD_SECONDS" -c "$LOAD_CLIENTS" -j "$((LOAD_CLIENTS < 2 ? LOAD_CLIENTS : 2))" -h "$PG/sock" -p "$PORT" -U "$PG_USER" postgres \
            >"$WORK/logs/pgbench-load.log" 2>&1 || log "pgbench load failed (see logs/pgbench-load.log)"
        LOAD_TO=$(date +%s.%N)
        PGBENCH_TPS=$(awk '/^tps/ { printf "%.0f", $3; exit }' "$WORK/logs/pgbench-load.log")
        # Let Rewind confirm the last position written under load (at most 60 s more).
        end_lsn=$(sql "$PORT" "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        for ((n = 0; n < 120; n++)); do
            r=$(sql "$PORT" "SELECT pg_wal_lsn_diff(coalesce(r.flush_lsn, s.restart_lsn), '0/0') >= $end_lsn FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = '$SLOT'" 2>/dev/null)
            [[ $r == t ]] && break
            sleep 0.5
        done
        sleep "$SAMPLE_INTERVAL"
        kill "$SAMPLER_PID" 2>/dev/null
        wait "$SAMPLER_PID" 2>/dev/null
        LAG_SUMMARY=$(analyze_lag "$SAMPLES" "$LOAD_FROM" "$LOAD_TO")
    fi
    # Stop protect: SIGINT to Rewind itself (GNU time ignores it), which stores what it has.
    rpid=$(pgrep -P "$TIME_PID" | head -n 1)
    [[ -n $rpid ]] && kill -INT "$rpid"
    for ((n = 0; n < 120; n++)); do kill -0 "$TIME_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$TIME_PID" 2>/dev/null && { log "protect did not stop within 60s of SIGINT: killing it"; kill "$rpid" 2>/dev/null; }
    wait "$TIME_PID"
    prc=$?
    st1=$(server_ticks "$SRC_PM")
    after=$(bytes_of "$VAULT")
    sql "$PORT" "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null 2>&1 || log "could not drop slot $SLOT"
    if [[ $ready == 1 ]]; then
        read -r wall user sys rss < <(tail -n 1 "$WORK/logs/rewind-protect.time")
        read -r lmax lp50 lp95 ln lun lrate lwal <<<"$LAG_SUMMARY"
        result="lag max ${lmax}s, p50 ${lp50}s, p95 ${lp95}s over $ln samples"
        [[ $lun -gt 0 ]] && result="$result; $lun samples never confirmed"
        [[ $prc != 0 ]] && result="$result; protect exited $prc (see logs/${PLOG##*/})"
        flushes=$(grep -c '"message_type":"flush"' "$PLOG")
        result="$result; $flushes flushes"
        awk -v OFS='\t' -v wall="$wall" -v user="$user" -v sys="$sys" -v rss="$rss" -v srv=$((st1 - st0)) \
            -v tck="$CLK_TCK" -v rate="$lrate" -v repo="$(mib "$after")" -v added="$(mib $((after - before)))" \
            -v ls="$LOAD_SECONDS" -v result="$result" 'BEGIN {
                w = wall > 0 ? wall : 0.01
                print "WAL shipping under load (" ls "s)", "rewind", sprintf("%.2f", wall), rate,
                    sprintf("%.0f%%", (user + sys) / w * 100), sprintf("%.0f%%", srv / tck / w * 100),
                    sprintf("%.1f", rss / 1024), repo, added, result
            }' >>"$ROWS"
    fi
fi
ELAPSED=$(($(date +%s) - START))

# --- 5. report ---------------------------------------------------------------------------

report() {
    echo "# Rewind and pgBackRest on PostgreSQL, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    if [[ -n ${NOTE:-} ]]; then
        echo "**Note:** $NOTE"
        echo
    fi
    echo "- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, $(uname -sr); load average before the run: $LOADAVG"
    echo "- Scratch file system: $(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')"
    echo "- Page cache dropped before each timed phase: $([[ $CAN_DROP == 1 ]] && echo yes || echo 'no (not permitted; numbers include warm-cache effects)')"
    echo "- $PG_VERSION; pgbench scale $SCALE: $SRC_COUNT accounts, databases $(mib "$DB_SIZE") MiB, data directory without pg_wal $(mib "$DATA_BYTES") MiB ($(mib "$DATA_BYTES2") MiB at the second backup)"
    echo "- pgBackRest: $PGBR_VERSION; process-max=$PROCESSES, compress-type=$PGBR_COMPRESS, compress-level=$PGBR_COMPRESS_LEVEL, repo1-cipher-type=$PGBR_CIPHER, start-fast=y, archive-push from archive_command"
    echo "- Rewind: $REWIND_VERSION; GOMAXPROCS=$REWIND_GOMAXPROCS, defaults otherwise (zstd fastest level, AES-256-GCM)"
    echo "- Second backups after updating $CHANGED rows (1%) of pgbench_accounts: pgBackRest --type=incr, Rewind its next base backup"
    if [[ -n $LAG_SUMMARY ]]; then
        read -r lmax lp50 lp95 ln lun lrate lwal <<<"$LAG_SUMMARY"
        echo "- WAL phase: pgbench -T $LOAD_SECONDS -c $LOAD_CLIENTS (TPC-B like), $PGBENCH_TPS tps, $lwal MiB of WAL at $lrate MB/s; Rewind protect --flush-every 1s; positions sampled every ${SAMPLE_INTERVAL}s; lag max ${lmax}s, p50 ${lp50}s, p95 ${lp95}s ($ln samples, $lun never confirmed); pgBackRest's archive_command was a no-op during this phase"
    fi
    echo "- Total run time: ${ELAPSED}s"
    echo
    echo "| Phase | Tool | Seconds | MB/s | CPU | Server CPU | Peak RSS MiB | Repo MiB | Added MiB | Result |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    awk -F'\t' -v OFS=' | ' '{ $1 = $1; print "| " $0 " |" }' "$ROWS"
    echo
    echo "MB/s is the data directory's bytes without pg_wal (10^6) per wall second, restores included;"
    echo "for the WAL phase it is the WAL the server wrote per second under load. CPU is the tool's"
    echo "(user+sys)/wall, 100% = one busy core; Server CPU is the PostgreSQL cluster's over the same"
    echo "time (Rewind's base backup is read and sent by a walsender, pgBackRest reads the files itself)."
    echo "Lag is, for each sample of pg_current_wal_lsn() under load, the time until Rewind's confirmed"
    echo "flush position (pg_stat_replication.flush_lsn of its walsender) passed it, to the next sample."
}

mkdir -p "$RESULTS_DIR"
out=$RESULTS_DIR/$RESULTS_NAME
report | tee "$out"
log "report written to $out"
