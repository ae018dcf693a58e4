#!/usr/bin/env bash
# Instructions per request of the gateway, under callgrind (counts repeat exactly, whatever
# else runs on the machine). See bench/README.md ("Instructions per request").
#
#   bench/callgrind.sh [--requests 2000] [--streams 1000] [--warmup 200] [--no-build]
#
# On 127.0.0.1: a zero-latency simulator (16 chunks), the release gateway under
# `valgrind --tool=callgrind` with one runtime worker thread (TOKIO_WORKER_THREADS=1), and a
# sequential keep-alive client. Counters are zeroed after the warm-up and dumped after the
# measured requests, so start-up is not counted. Prints instructions per non-streamed request
# and per 16-chunk stream; the dumps are kept for callgrind_annotate (--keep).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
REQUESTS=2000 STREAMS=1000 WARMUP=200 BUILD=1 KEEP=0 PRELOAD=""
while [ $# -gt 0 ]; do
    case "$1" in
        --requests) REQUESTS=${2:?}; shift 2 ;;
        --streams) STREAMS=${2:?}; shift 2 ;;
        --warmup) WARMUP=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        --preload) PRELOAD=${2:?}; shift 2 ;;  # e.g. another allocator: /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
[ "$BUILD" = 1 ] && (cd "$ROOT" && cargo build --release --locked -q -p backstop-gateway -p backstop-sim)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
            [ "$KEEP" = 1 ] && echo "dumps in $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT

wait_addr() { # FILE → 127.0.0.1:PORT from "listening on http://..."
    local i
    for i in $(seq 1 600); do
        a=$(sed -n 's#.*listening on http://\([0-9.:]*\).*#\1#p' "$1" | head -n 1)
        [ -n "$a" ] && { echo "$a"; return; }
        sleep 0.1
    done
    echo "no address in $1" >&2; exit 1
}

"$BIN/backstop-sim" --listen 127.0.0.1:0 --no-record --chunks 16 >"$WORK/sim.out" 2>&1 &
PIDS+=($!)
SIM=$(wait_addr "$WORK/sim.out")
cat >"$WORK/gw.toml" <<TOML
[server]
listen = "127.0.0.1:0"
client_keys_env = "CG_CLIENT_KEYS"
[providers.primary]
kind = "openai"
model = "gpt-4o-mini"
api_key_env = "CG_UPSTREAM_KEY"
base_url = "http://$SIM/v1"
[chains.bench]
providers = ["primary"]
TOML

client() { # PORT N STREAM(0|1)
    python3 - "$@" <<'PY'
import http.client, sys
port, n, stream = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
body = ('{"model":"bench",' + ('"stream":true,' if stream else '') +
        '"messages":[{"role":"user","content":"Say something short about fallback chains."}]}')
c = http.client.HTTPConnection("127.0.0.1", port)
h = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
for _ in range(n):
    c.request("POST", "/v1/chat/completions", body, h)
    r = c.getresponse(); data = r.read()
    if r.status != 200 or (stream and b"[DONE]" not in data):
        sys.exit(f"bad answer {r.status}: {data[:200]!r}")
PY
}

measure() { # NAME N STREAM → instructions per request
    local name=$1 n=$2 stream=$3
    CG_CLIENT_KEYS=bench CG_UPSTREAM_KEY=sim-key RUST_LOG=${RUST_LOG:-warn} TOKIO_WORKER_THREADS=1 \
        ${PRELOAD:+env LD_PRELOAD=$PRELOAD} valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.%p" \
        "$BIN/backstop" serve --config "$WORK/gw.toml" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=($pid)
    local addr; addr=$(wait_addr "$WORK/$name.out")
    client "${addr#*:}" "$WARMUP" "$stream"
    callgrind_control -z "$pid" >/dev/null
    client "${addr#*:}" "$n" "$stream"
    callgrind_control -d "$pid" >/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local dump; dump=$(ls -t "$WORK/$name.$pid".* 2>/dev/null | grep -v "\.$pid$" | head -n 1)
    local total; total=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
    echo "$name: $(( total / n )) instructions per request ($total over $n; dump $dump)"
}
measure nonstream "$REQUESTS" 0
measure stream "$STREAMS" 1
