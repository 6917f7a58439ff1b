#!/usr/bin/env bash
# Starts a local Garage (S3-compatible, from crates.io: `cargo install garage --locked`) for the
# tests, with one bucket and one key, and writes DIR/s3.env with the variables the tests read:
#   LOGFLUX_TEST_S3_URL, AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#   AWS_ALLOW_HTTP
# Usage: tools/s3-test-server.sh start DIR   |   tools/s3-test-server.sh stop DIR
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?directory}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf="$dir/garage.toml"

case "$cmd" in
stop)
    if [ -f "$dir/garage.pid" ]; then kill "$(cat "$dir/garage.pid")" 2>/dev/null || true; rm -f "$dir/garage.pid"; fi
    exit 0
    ;;
start) ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

command -v garage >/dev/null || { echo "garage not found: cargo install garage --locked" >&2; exit 1; }
# Free ports in a private range, so parallel runs on one machine do not collide.
base=$((39000 + RANDOM % 2000 * 4))
cat > "$conf" <<CONF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((base + 1))"
rpc_public_addr = "127.0.0.1:$((base + 1))"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$base"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((base + 3))"
CONF

garage -c "$conf" server > "$dir/garage.log" 2>&1 &
echo $! > "$dir/garage.pid"

# Wait (bounded) until the node answers.
for _ in $(seq 1 100); do
    if garage -c "$conf" status > "$dir/status.txt" 2>/dev/null; then break; fi
    if ! kill -0 "$(cat "$dir/garage.pid")" 2>/dev/null; then cat "$dir/garage.log" >&2; exit 1; fi
    sleep 0.2
done
garage -c "$conf" node id -q > "$dir/node-id.txt" 2>/dev/null
node=$(cut -d@ -f1 "$dir/node-id.txt")
garage -c "$conf" layout assign -z dc1 -c 1G "$node" > /dev/null
garage -c "$conf" layout apply --version 1 > /dev/null
garage -c "$conf" bucket create logflux-test > /dev/null
garage -c "$conf" key create logflux-test-key > "$dir/key.txt"
garage -c "$conf" bucket allow --read --write --owner logflux-test --key logflux-test-key > /dev/null
key_id=$(grep -Eo 'GK[0-9a-f]+' "$dir/key.txt" | head -n1)
# Garage panics when its stdout closes early (awk's `exit` would do that under load), so its
# output goes to a file first and is parsed from there.
garage -c "$conf" key info --show-secret logflux-test-key > "$dir/key-info.txt"
secret=$(awk -F': *' '/[Ss]ecret key/ {print $2; exit}' "$dir/key-info.txt")
[ -n "$key_id" ] && [ -n "$secret" ] || { echo "could not read the Garage key" >&2; cat "$dir/key.txt" >&2; exit 1; }
cat > "$dir/s3.env" <<ENV
export LOGFLUX_TEST_S3_URL=s3://logflux-test
export AWS_ENDPOINT_URL=http://127.0.0.1:$base
export AWS_REGION=garage
export AWS_ACCESS_KEY_ID=$key_id
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_ALLOW_HTTP=true
ENV
chmod 600 "$dir/s3.env"
echo "garage running on 127.0.0.1:$base; source $dir/s3.env"
