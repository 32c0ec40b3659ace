#!/usr/bin/env bash
# The edge plane at scale: N simulated agents (default 20,000) reporting every
# S seconds (default 30) to one release-built Anchor (`anchor dev`: gateway,
# worker, agent node, AgentField mock in one process) on this machine's
# PostgreSQL. Prints the simulator's latency and rate figures, and the CPU
# the Anchor process and PostgreSQL used while the agents were reporting.
#
#   scripts/scale-simulation.sh [AGENTS] [INTERVAL] [DURATION]
#
# Needs PostgreSQL at 127.0.0.1:5432 (trust auth, superuser `postgres`).
# Builds with CARGO_TARGET_DIR (default /var/tmp/anchor-target). Not run by CI
# (it takes minutes and both cores); its figures go into the closing notes.
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS=${1:-20000}
INTERVAL=${2:-30}
DURATION=${3:-120}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/anchor-target}"
cargo build --release --locked -q -p anchor -p anchor-edge-agent
bin="$CARGO_TARGET_DIR/release"

db=anchor_scale_$$
work=$(mktemp -d /var/tmp/anchor-scale-XXXXXX)
psql -q "postgres://postgres@127.0.0.1:5432/postgres" -c "CREATE DATABASE $db"
cleanup() {
  [ -n "${dev_pid:-}" ] && kill "$dev_pid" 2>/dev/null && wait "$dev_pid" 2>/dev/null || true
  psql -q "postgres://postgres@127.0.0.1:5432/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export ANCHOR_DATA_DIR="$work/data" ANCHOR_DATABASE_MAX_CONNECTIONS=32 ANCHOR_LOG_FILTER=warn
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
"$bin/anchor" dev --http-addr "127.0.0.1:$port" > "$work/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 1 100); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$url/readyz" >/dev/null || { cat "$work/dev.log"; echo "anchor dev did not start" >&2; exit 1; }

token=$("$bin/anchor" token issue --sub scale-admin --platform-admin)
call() { curl -sf -H "Authorization: Bearer $token" -H "Idempotency-Key: $(date +%s%N)" -H "Content-Type: application/json" "$@"; }
call -d '{"slug":"scale","name":"Scale test","admin":{"subject":"scale-admin"}}' "$url/api/v1/workspaces" >/dev/null
enroll=$(call -d "{\"label\":\"scale\",\"max_uses\":$AGENTS}" "$url/api/v1/workspaces/scale/enrollment-tokens" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# CPU seconds (user + system) of a process and its threads, and of PostgreSQL.
ticks=$(getconf CLK_TCK)
cpu_of() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
pg_cpu() {
  for pid in $(pgrep -u postgres); do cat "/proc/$pid/stat" 2>/dev/null; done \
    | awk -v t="$ticks" '{s += $14 + $15} END {print s / t}'
}

echo "== $AGENTS agents every $INTERVAL s for $DURATION s against $url"
ANCHOR_ENROLL_TOKEN="$enroll" "$bin/anchor-edge-agent" simulate --server "$url" --agents "$AGENTS" \
  --interval "$INTERVAL" --duration "$DURATION" --state-dir "$work/agents" 2>&1 | tee "$work/simulate.log" &
sim_pid=$!
# Measure CPU over the reporting phase only: from the first batch sent.
until grep -q "^enrolled" "$work/simulate.log" 2>/dev/null || ! kill -0 "$sim_pid" 2>/dev/null; do sleep 1; done
a0=$(cpu_of "$dev_pid"); p0=$(pg_cpu); s0=$(date +%s.%N)
wait "$sim_pid"
a1=$(cpu_of "$dev_pid"); p1=$(pg_cpu); s1=$(date +%s.%N)
python3 - "$a0" "$a1" "$p0" "$p1" "$s0" "$s1" <<'PY'
import sys
a0, a1, p0, p1, s0, s1 = map(float, sys.argv[1:])
wall = s1 - s0
print(f"CPU while reporting ({wall:.0f} s): anchor (gateway + worker) {100 * (a1 - a0) / wall:.0f}% of a core, "
      f"PostgreSQL {100 * (p1 - p0) / wall:.0f}% of a core (2 cores in all)")
PY
