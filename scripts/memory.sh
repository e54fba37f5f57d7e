#!/usr/bin/env bash
# What queued jobs cost, measured (not part of CI): Redis's memory and the API's
# resident set per 1,000 queued jobs, and what one key can make Redis hold.
#
#   scripts/memory.sh
#
# It starts its own redis-server and API (release builds) and no worker, so every
# accepted job stays queued, then:
#   1. 1,000 minimal Python jobs (anonymous);
#   2. 1,000 jobs of one 1 MiB test, with a key without quotas;
#   3. a key with `keys add`'s defaults submitting jobs of 8 tests of 1 MiB until
#      it is refused: what Redis holds for it, beside its quota.
# After each it prints the growth of Redis's used_memory (less client buffers)
# and the API's resident set.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/optimus-memory.XXXXXX)
echo "==> queued-job memory; logs in $dir"

cargo build -q --release -p optimus-api -p optimus-cli
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
api_port=$(free_port)
export REDIS_URL="redis://127.0.0.1:$redis_port" API_PORT="$api_port" NO_COLOR=1
# The registry with room for every job here in Python's queue (its depth cap would
# refuse them before any quota is reached).
python3 -c 'import json, sys
r = json.load(open("config/languages.json"))
for l in r["languages"] if isinstance(r, dict) else r: l["max_queue_depth"] = 100000
json.dump(r, open(sys.argv[1], "w"))' "$dir/languages.json"
export OPTIMUS_LANGUAGES="$dir/languages.json"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --maxmemory 3gb --maxmemory-policy noeviction --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
for _ in $(seq 100); do [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
api_pid=
cleanup() {
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$dir"/small.json "$dir"/one-mib.json "$dir"/eight-mib.json
}
trap cleanup EXIT
target/release/optimus-api >"$dir/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$api_port/health" | grep -q '"status":"ok"' && break; sleep 0.2; done

# Redis's memory less its clients' buffers (a large command leaves a connection's
# query buffer grown for a while; that is the API's connection, not a job's).
used() {
  redis-cli -p "$redis_port" info memory | tr -d '\r' |
    awk -F: '/^used_memory:/ { u = $2 } /^mem_clients_normal:/ { c = $2 } END { print u - c }'
}
rss() { awk '/^VmRSS:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$api_pid/status"; }
mib() { python3 -c "print(f'{$1 / 1048576:.1f} MiB')"; }
# submit BODY N KEY: N submissions of BODY, 8 at a time; prints the answers' status codes, counted.
submit() {
  local body=$1 n=$2 key=${3:-}
  seq "$n" | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST "http://127.0.0.1:$api_port/jobs" \
    -H 'Content-Type: application/json' ${key:+-H "Authorization: Bearer $key"} --data-binary "@$body" |
    sort | uniq -c | awk '{ printf "%s x %s  ", $1, $2 }'
  echo
}

python3 - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
small = {"language": "python", "source_code": "print(int(input()) * 2)", "test_cases": [{"input": "21", "expected_output": "42"}]}
one = {"language": "python", "source_code": "import sys\nprint(len(sys.stdin.read()))", "test_cases": [{"input": "x" * (1 << 20)}]}
eight = dict(one, test_cases=[{"input": "x" * (1 << 20)}] * 8)
for name, job in [("small", small), ("one-mib", one), ("eight-mib", eight)]:
    with open(f"{d}/{name}.json", "w") as f:
        json.dump(job, f)
EOF
size() { stat -c %s "$1"; }

base=$(used)
echo "  start: redis $(mib "$base"), api rss $(rss)"

before=$(used)
echo "1. 1,000 jobs of $(size "$dir/small.json") bytes each, anonymous: $(submit "$dir/small.json" 1000)"
after=$(used)
echo "   redis +$(mib $((after - before))) ($(( (after - before) / 1000 )) bytes a job); api rss $(rss)"

free=$(target/release/optimus-cli keys add --name unbounded --max-queued 0 --max-bytes 0 2>>"$dir/keys.log")
before=$(used)
echo "2. 1,000 jobs of $(size "$dir/one-mib.json") bytes each, a key without quotas: $(submit "$dir/one-mib.json" 1000 "$free")"
after=$(used)
echo "   redis +$(mib $((after - before))) ($(( (after - before) / 1000 )) bytes a job); api rss $(rss)"

flood=$(target/release/optimus-cli keys add --name defaults 2>>"$dir/keys.log")
before=$(used)
echo "3. 200 jobs of $(size "$dir/eight-mib.json") bytes each, a key with the default quotas: $(submit "$dir/eight-mib.json" 200 "$flood")"
after=$(used)
echo "   redis +$(mib $((after - before))) for this key (its quota: 256.0 MiB); api rss $(rss)"
echo "  api peak rss (VmHWM): $(awk '/^VmHWM:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$api_pid/status")"
