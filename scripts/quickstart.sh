#!/usr/bin/env bash
# Rewind's main job: the control plane on embedded defaults. It builds rewind, prepares
# what examples/quickstart/rewind.yaml names under /var/tmp/rewind-quickstart (password
# files for two vaults at two sites, sample data), then runs
#   rewind server --config examples/quickstart/rewind.yaml
# in the foreground: an SQLite catalog and local vaults, backups of the sample data every
# minute, a copy of each point to the second site's vault, retention after every job, the
# API and Prometheus metrics on 127.0.0.1:8080. Ctrl-C stops it; running the script again
# keeps the vaults and catalog (REWIND_QUICKSTART_FRESH=1 starts from scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

dir=/var/tmp/rewind-quickstart
if [ "${REWIND_QUICKSTART_FRESH:-}" = 1 ]; then rm -rf "$dir"; fi
mkdir -p "$dir/bin" "$dir/keys" "$dir/vaults" "$dir/server" "$dir/data/app" "$dir/data/etc"
chmod 700 "$dir/keys"
go build -o "$dir/bin/rewind" ./cmd/rewind

for v in main offsite; do
  [ -s "$dir/keys/$v.key" ] || { head -c 32 /dev/urandom | base64 > "$dir/keys/$v.key"; chmod 600 "$dir/keys/$v.key"; }
done
if [ ! -e "$dir/data/app/orders.csv" ]; then
  cp -a /usr/local/go/src/net/http "$dir/data/app/src"
  for i in $(seq 1 2000); do echo "$i,order-$i,$((i * 7 % 100)).00"; done > "$dir/data/app/orders.csv"
  printf 'listen 8081\nworkers 4\n' > "$dir/data/etc/shop.conf"
fi

cat <<MSG
Starting the Rewind control plane (Ctrl-C stops it). In another terminal:
  export REWIND_SERVER=http://127.0.0.1:8080
  $dir/bin/rewind plans                 # the gold plan: every minute, copies to the offsite vault
  $dir/bin/rewind jobs                  # backup and copy jobs as they run
  $dir/bin/rewind points                # recovery points in both sites' vaults
  $dir/bin/rewind jobs start backup --resource app-files
  $dir/bin/rewind events list
  curl -s http://127.0.0.1:8080/metrics | grep rewind_rpo_exposure_seconds
Restore from the second site alone, with only its key:
  REWIND_PASSWORD_FILE=$dir/keys/offsite.key $dir/bin/rewind restore --vault $dir/vaults/offsite latest --resource app-files --target /tmp/restored
MSG
exec "$dir/bin/rewind" server --config examples/quickstart/rewind.yaml --tick 5s
