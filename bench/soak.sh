#!/usr/bin/env bash
# Soak: a release-built gateway in front of three simulators with random faults, under mixed
# traffic (half streamed) for --minutes N (default 30). The gateway's RSS (VmRSS) and open file
# descriptors are sampled every --interval seconds (default 60); after --warmup samples
# (default 2, i.e. two minutes) the first sample is the baseline and no later sample may exceed
# it by more than 10% (fds: 10% or 4, whichever is larger). Prints a table and PASS/FAIL.
#
#   bench/soak.sh                 # 30 minutes
#   bench/soak.sh --minutes 2     # a quick check
#
# Everything listens on 127.0.0.1 only. Every loop is bounded; children are killed on exit.
set -euo pipefail

MINUTES=30
INTERVAL=60
WARMUP=2
CONCURRENCY=16
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --interval) INTERVAL="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ "$MINUTES" =~ ^[0-9]+$ && "$MINUTES" -ge 1 ]] || { echo "--minutes must be a positive integer" >&2; exit 2; }
SAMPLES=$(( MINUTES * 60 / INTERVAL ))
if (( WARMUP >= SAMPLES )); then WARMUP=$(( SAMPLES > 1 ? SAMPLES - 1 : 0 )); fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d -t backstop-soak.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "building (release)..." >&2
(cd "$ROOT" && cargo build --release --locked -p backstop-gateway -p backstop-sim >&2)
BIN="$ROOT/target/release"

# Waits (bounded) for "listening on http://ADDR" in a file; prints ADDR.
wait_addr() {
  local file="$1" i
  for i in $(seq 1 100); do
    if grep -qo 'listening on http://[0-9.:]*' "$file" 2>/dev/null; then
      grep -o 'listening on http://[0-9.:]*' "$file" | head -1 | sed 's#.*http://##'
      return 0
    fi
    sleep 0.1
  done
  echo "no address in $file after 10 s:" >&2
  cat "$file" >&2
  return 1
}

SIM_ADDRS=()
for n in 0 1 2; do
  "$BIN/backstop-sim" --listen 127.0.0.1:0 --no-record --seed $((1000 + n)) --chunks 8 \
    --latency-ms 20 --ttft-ms 20 --chunk-delay-ms 5 \
    --fail 500=0.02 --fail 503=0.01 --fail rate_limited=0.001 --fail hang=0.001 \
    --fail disconnect=0.01 --fail truncate=0.01 --fail malformed=0.005 \
    >"$WORK/sim$n.out" 2>&1 &
  PIDS+=($!)
  SIM_ADDRS+=("$(wait_addr "$WORK/sim$n.out")")
done

cat >"$WORK/soak.toml" <<EOF
[server]
listen = "127.0.0.1:0"

[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key_env = "SOAK_KEY"
base_url = "http://${SIM_ADDRS[0]}/v1"
timeout = "2s"
retries = 1
breaker = { failure_threshold = 50, window = "1s", recovery_timeout = "500ms", half_open_probes = 2 }

[providers.anthropic]
kind = "anthropic"
model = "claude-3-5-haiku-latest"
api_key_env = "SOAK_KEY"
base_url = "http://${SIM_ADDRS[1]}"
timeout = "2s"
retries = 1
breaker = { failure_threshold = 50, window = "1s", recovery_timeout = "500ms", half_open_probes = 2 }

[providers.groq]
kind = "groq"
model = "llama-3.1-8b-instant"
api_key_env = "SOAK_KEY"
base_url = "http://${SIM_ADDRS[2]}"
timeout = "2s"
retries = 1
breaker = { failure_threshold = 50, window = "1s", recovery_timeout = "500ms", half_open_probes = 2 }

[chains.default]
providers = ["openai", "anthropic", "groq"]
timeout = "8s"
idle_timeout = "2s"
EOF

SOAK_KEY=soak-key RUST_LOG=error "$BIN/backstop" serve --config "$WORK/soak.toml" >"$WORK/gateway.out" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
GW_ADDR="$(wait_addr "$WORK/gateway.out")"
echo "gateway pid $GW_PID on $GW_ADDR; sims ${SIM_ADDRS[*]}; $MINUTES min, sample every ${INTERVAL}s, warm-up $WARMUP sample(s)" >&2

python3 "$ROOT/bench/soak_client.py" --addr "$GW_ADDR" --seconds $(( MINUTES * 60 )) \
  --concurrency "$CONCURRENCY" >"$WORK/client.json" 2>"$WORK/client.err" &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

printf '%-8s %-10s %-6s %s\n' "minute" "rss_kb" "fds" "note"
RSS=(); FDS=()
for i in $(seq 1 "$SAMPLES"); do
  sleep "$INTERVAL"
  kill -0 "$GW_PID" 2>/dev/null || { echo "FAIL: the gateway died" >&2; cat "$WORK/gateway.out" >&2; exit 1; }
  r=$(rss_kb "$GW_PID"); f=$(fds "$GW_PID")
  RSS+=("$r"); FDS+=("$f")
  note=""
  if (( i <= WARMUP )); then note="warm-up"; elif (( i == WARMUP + 1 )); then note="baseline"; fi
  printf '%-8s %-10s %-6s %s\n' "$(( i * INTERVAL / 60 ))" "$r" "$f" "$note"
done

# Bounded wait for the client's summary.
for _ in $(seq 1 120); do kill -0 "$CLIENT_PID" 2>/dev/null || break; sleep 1; done
echo "traffic: $(cat "$WORK/client.json")"

base=$WARMUP
status=0
max_rss=0; max_fds=0
for (( j = base; j < ${#RSS[@]}; j++ )); do
  (( RSS[j] > max_rss )) && max_rss=${RSS[j]}
  (( FDS[j] > max_fds )) && max_fds=${FDS[j]}
done
rss_limit=$(( RSS[base] * 110 / 100 ))
fd_slack=$(( FDS[base] / 10 )); (( fd_slack < 4 )) && fd_slack=4
fd_limit=$(( FDS[base] + fd_slack ))
echo "after warm-up: rss baseline ${RSS[base]} kB, max $max_rss kB (limit $rss_limit); fds baseline ${FDS[base]}, max $max_fds (limit $fd_limit)"
if (( max_rss > rss_limit )); then echo "FAIL: RSS grew more than 10%"; status=1; fi
if (( max_fds > fd_limit )); then echo "FAIL: open fds grew"; status=1; fi
if grep -q '"200 stream TRUNCATED"\|transport' "$WORK/client.json"; then
  echo "FAIL: truncated streams or transport errors"; status=1
fi
(( status == 0 )) && echo "PASS"
exit $status
