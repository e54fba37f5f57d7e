#!/usr/bin/env bash
# Sets up and starts Optimus on this machine: redis-server, the language images,
# the API and one worker per configured language. Safe to run again.
#
#   ./setup.sh          set up, then start everything in the background
#   ./setup.sh stop     stop what setup.sh started
#   ./setup.sh status   show what runs
#
# Logs and pids go to .optimus/. Settings come from the environment (see README).
set -euo pipefail
cd "$(dirname "$0")"
state=.optimus
mkdir -p "$state/logs" "$state/redis"

API_PORT="${API_PORT:-8080}"
REDIS_PORT="${REDIS_PORT:-6379}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
export API_PORT

# Stops one started process (SIGTERM) and waits for it to exit.
stop_one() {
  local pidfile=$1 pid
  [ -e "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    # Workers drain their running jobs first (WORKER_DRAIN_SECS, default 30).
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "stopped $(basename "$pidfile" .pid) ($pid)"
  fi
  rm -f "$pidfile"
}

# Workers first, all at once, and waited for: a draining worker must still reach
# Redis to store its results. Then the API, then Redis.
stop_all() {
  for pidfile in "$state"/worker-*.pid; do stop_one "$pidfile" & done
  wait
  stop_one "$state/api.pid"
  stop_one "$state/redis.pid"
}

running() { [ -e "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

case "${1:-start}" in
  stop) stop_all; exit 0 ;;
  status)
    for pidfile in "$state"/*.pid; do
      [ -e "$pidfile" ] || continue
      name=$(basename "$pidfile" .pid)
      if running "$name"; then echo "$name: running ($(cat "$pidfile"))"; else echo "$name: stopped"; fi
    done
    exit 0 ;;
  start) ;;
  *) echo "usage: ./setup.sh [start|stop|status]" >&2; exit 2 ;;
esac

PROFILE=release scripts/prepare.sh
echo "==> building optimus-api and optimus-worker (release)"
cargo build -q --release -p optimus-api -p optimus-worker

if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  echo "==> starting redis-server on port $REDIS_PORT (append-only file in $state/redis, maxmemory ${REDIS_MAXMEMORY:-1gb})"
  # Append-only file (acknowledged writes survive a crash of Redis), and no eviction
  # (an evicting Redis would drop queued jobs): the API refuses new jobs near maxmemory.
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --appendonly yes --appendfsync everysec \
    --maxmemory "${REDIS_MAXMEMORY:-1gb}" --maxmemory-policy noeviction --dir "$PWD/$state/redis" \
    --daemonize yes --pidfile "$PWD/$state/redis.pid" --logfile "$PWD/$state/logs/redis.log"
fi
# PONG, not just an answer: while Redis loads its append-only file it answers
# LOADING, and the API and workers would start against it too early.
for _ in $(seq 600); do [ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
[ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = PONG ] || { echo "redis-server does not answer; see $state/logs/redis.log" >&2; exit 1; }

start() {
  local name=$1; shift
  if running "$name"; then echo "$name: already running"; return; fi
  nohup "$@" >"$state/logs/$name.log" 2>&1 &
  echo $! >"$state/$name.pid"
  echo "$name: started (log: $state/logs/$name.log)"
}

start api target/release/optimus-api
languages=$(target/release/optimus-cli list-langs | awk 'NR > 1 { print $1 }')
for lang in $languages; do
  start "worker-$lang" target/release/optimus-worker --language "$lang"
done

for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$API_PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$API_PORT/health" >/dev/null || { echo "the API did not come up; see $state/logs/api.log" >&2; exit 1; }
for lang in $languages; do
  sleep 0.2
  running "worker-$lang" || { echo "worker-$lang stopped; see $state/logs/worker-$lang.log" >&2; exit 1; }
done

cat <<MSG

Optimus is up on http://127.0.0.1:$API_PORT (languages: $(echo $languages | tr ' ' ',')).
Try it:

  curl -s -X POST http://127.0.0.1:$API_PORT/jobs -H 'Content-Type: application/json' \\
    -d '{"language": "python", "source_code": "a, b = map(int, input().split())\\nprint(a + b)", "test_cases": [{"input": "2 3", "expected_output": "5"}]}'

then poll the job with the job_id it answers:

  curl -s http://127.0.0.1:$API_PORT/jobs/<job_id>

Stop everything with: ./setup.sh stop
MSG
