#!/usr/bin/env bash
# Soak test (not part of CI): runs N mixed jobs through a private Optimus stack and
# reports what must be zero and what must stay bounded.
#
#   scripts/soak.sh 10000 [rate per second, default 4]
#
# It starts its own redis-server (append-only file), API and one worker per language
# (release builds), runs `optimus-bench soak`, then prints: lost jobs, failed jobs,
# misjudged jobs, duplicate results (a job stored twice, from the workers' logs),
# containers left behind, the peak RSS of the API and of each worker, and Redis's
# memory at the start, its highest reading (sampled every second) against the
# high-water mark past which the API refuses new jobs, and at the end. Logs stay
# in the directory it prints.
#
# SOAK_FLOOD=1 submits the mix with one key (`optimus-cli keys add`) while a
# second key, with the default quotas, floods Python jobs of 2 MiB beside it for
# the whole run: the soak then also prints what the flood got, the mix's
# latency per kind, and how the Python worker shared itself between the two keys
# minute by minute (scripts/fair-share.py).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:?usage: scripts/soak.sh N [rate]}"
rate="${2:-4}"
dir=$(mktemp -d /tmp/optimus-soak.XXXXXX)
echo "==> soak: $jobs jobs at $rate/s; logs in $dir"

cargo build -q --release -p optimus-api -p optimus-worker -p optimus-cli -p optimus-bench
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
api_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export REDIS_URL="redis://127.0.0.1:$redis_port" API_PORT="$api_port" NO_COLOR=1
maxmemory="${REDIS_MAXMEMORY:-2gb}"
redis-server --port "$redis_port" --bind 127.0.0.1 --appendonly yes --dir "$dir" \
  --maxmemory "$maxmemory" --maxmemory-policy noeviction --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
for _ in $(seq 100); do [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
}
trap cleanup EXIT

target/release/optimus-api >"$dir/api.log" 2>&1 &
api_pid=$!
pids+=("$api_pid")
languages=$(target/release/optimus-cli list-langs | awk 'NR > 1 { print $1 }')
declare -A worker_pid
for lang in $languages; do
  target/release/optimus-worker --language "$lang" >"$dir/worker-$lang.log" 2>&1 &
  worker_pid[$lang]=$!
  pids+=("$!")
done
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$api_port/health" | grep -q '"status":"ok"' && break; sleep 0.2; done
used_memory() { redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r'; }
mem_start=$(used_memory)
# Redis's memory once a second, for its highest reading during the soak.
(while sleep 1; do used_memory >>"$dir/redis-memory.txt" 2>/dev/null || true; done) &
pids+=("$!")

mix=()
if [ -n "${SOAK_FLOOD:-}" ]; then
  # The mix's key is a well-behaved tenant whose results (kept 24 h) may outgrow
  # the default quota over 10,000 jobs; the flood's key has every default.
  mix+=(--key "$(target/release/optimus-cli keys add --name soak-mix --max-queued 0 --max-bytes 0 2>>"$dir/keys.log")")
  mix+=(--flood-key "$(target/release/optimus-cli keys add --name soak-flood 2>>"$dir/keys.log")")
fi

status=0
# SOAK_KINDS="fork bomb,spin" runs only those kinds of job.
target/release/optimus-bench --api "http://127.0.0.1:$api_port" --out "$dir" soak --jobs "$jobs" --rate "$rate" \
  ${SOAK_KINDS:+--kinds "$SOAK_KINDS"} "${mix[@]}" || status=$?

mem_end=$(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')
peak() { awk '/^VmHWM:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
echo "==> peak RSS (VmHWM)"
echo "  api: $(peak "$api_pid")"
for lang in $languages; do echo "  worker-$lang: $(peak "${worker_pid[$lang]}")"; done

# Stop the workers (drained), then count what they left.
worker_ids=$(grep -ho 'worker serving worker=[^ ]*' "$dir"/worker-*.log | sed 's/.*worker=//')
for lang in $languages; do kill "${worker_pid[$lang]}"; done
for lang in $languages; do wait "${worker_pid[$lang]}" 2>/dev/null || true; done
leaked=0
for id in $worker_ids; do
  leaked=$((leaked + $(docker ps -aq --filter "label=optimus.worker=$id" | wc -l)))
done
dups=$(grep -h 'optimus_worker::worker: job stored' "$dir"/worker-*.log | grep -o 'job_id=[0-9a-f-]*' | sort | uniq -d | wc -l)
stored=$(grep -h 'optimus_worker::worker: job stored' "$dir"/worker-*.log | grep -o 'job_id=[0-9a-f-]*' | wc -l)
echo "==> after the workers stopped"
echo "  results stored: $stored; duplicate results: $dups"
echo "  containers left: $leaked"
max_bytes=$(redis-cli -p "$redis_port" config get maxmemory | sed -n 2p)
high_percent="${OPTIMUS_REDIS_MEMORY_HIGH_PERCENT:-90}"
mem_high=$(sort -n "$dir/redis-memory.txt" | tail -1)
echo "  redis used_memory: start $((mem_start / 1024)) KiB, highest $((mem_high / 1024)) KiB, end $((mem_end / 1024)) KiB;" \
  "high-water mark $((max_bytes / 100 * high_percent / 1024)) KiB ($high_percent % of maxmemory $maxmemory)"
echo "  sandbox failures (each retried): $(grep -h 'sandbox failed' "$dir"/worker-*.log | wc -l)"
runs=$(grep -ho 'job judged.*run_ms=[0-9]*' "$dir"/worker-*.log | sed 's/.*run_ms=//' | sort -n)
if [ -n "$runs" ]; then
  n=$(echo "$runs" | wc -l)
  echo "  job run time (ms): median $(echo "$runs" | sed -n "$(( (n + 1) / 2 ))p"), max $(echo "$runs" | tail -1), over $n jobs"
fi
if [ -n "${SOAK_FLOOD:-}" ]; then
  # How the Python worker shared itself between the two keys (from the records).
  key_id() { grep -o "key '$1' (id [0-9a-f]*" "$dir/keys.log" | awk '{ print $3 }'; }
  echo "==> fair share (scripts/fair-share.py; also in $dir/fair-share.txt)"
  scripts/fair-share.py "$redis_port" python "$(key_id soak-mix)" "$(key_id soak-flood)" >"$dir/fair-share.txt" || status=1
  tail -1 "$dir/fair-share.txt"
fi
[ "$dups" -eq 0 ] && [ "$leaked" -eq 0 ] && [ "$mem_high" -lt $((max_bytes / 100 * high_percent)) ] || status=1
exit $status
