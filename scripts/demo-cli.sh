#!/usr/bin/env bash
# A tour of the direct command line (no server): build the binary, create a demo vault with a password file,
# back up sample data twice (the second run reads only what changed), restore the latest
# point, compare it with the source, and verify every byte in the vault. Everything lives
# under $REWIND_DEMO_DIR (default /var/tmp/rewind-demo); running it again
# starts from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

dir="${REWIND_DEMO_DIR:-/var/tmp/rewind-demo}"
rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/data"
go build -o "$dir/bin/rewind" ./cmd/rewind
rw="$dir/bin/rewind"

head -c 32 /dev/urandom | base64 > "$dir/vault.key"
chmod 600 "$dir/vault.key"
export REWIND_VAULT="$dir/vault" REWIND_PASSWORD_FILE="$dir/vault.key"

# Sample data: a slice of the Go source tree, a small binary file and a symlink.
cp -a /usr/local/go/src/net "$dir/data/net"
head -c $((8 << 20)) /dev/urandom > "$dir/data/blob.bin"
ln -s net/http "$dir/data/http-link"

echo "== init";    "$rw" init
echo "== backup";  "$rw" backup --tag app=demo "$dir/data"
echo "changed" >> "$dir/data/net/http/server.go"
echo "== backup (incremental)"; "$rw" backup --tag app=demo "$dir/data"
echo "== points";  "$rw" points
echo "== restore"; "$rw" restore latest --target "$dir/restore"
diff -r "$dir/data" "$dir/restore" && echo "restore matches the source"
echo "== check --read-data"; "$rw" check --read-data

cat <<MSG

Done. Explore the demo vault:
  export REWIND_VAULT=$dir/vault REWIND_PASSWORD_FILE=$dir/vault.key
  $rw points
  $rw ls latest net/http | head
  $rw restore latest --target /tmp/r --include 'net/http/*.go'
MSG
