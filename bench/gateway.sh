#!/usr/bin/env bash
# Load benchmark of the backstop gateway, in one command. See bench/README.md.
#
#   bench/gateway.sh [--duration 10s] [--connections 20] [--repeat 3] [--quick] ...
#
# On 127.0.0.1 only, it starts simulators (backstop-sim), the gateway (backstop serve) and
# nginx as a plain keep-alive reverse proxy, then measures with wrk, side by side:
#   (a) simulator directly, (b) gateway → simulator, (c) nginx → simulator,
#   non-streaming and streaming; (d) failover cost (primary refusing connections, primary's
#   breaker open) against a healthy primary; (e) gateway RSS idle and with 1,000 open streams.
# Beside (a)–(c), where they install: the Portkey gateway and the LiteLLM proxy in front of the
# same simulator (installed under target/bench-tools/; a row that cannot be installed, started
# or checked is reported as not measured, with the reason).
# It prints a markdown table and writes it into BENCHMARKS.md between
# <!-- load:begin --> and <!-- load:end -->. Every process it starts is stopped on exit.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=""
CONNECTIONS=20
THREADS=""
REPEAT=""
WARMUP=""
STREAMS=1000
STREAMS_HOLD=""
CHUNKS=16
RATES="3000 10000"
PACE_MS=10
QUICK=0
OUTPUT="$ROOT/BENCHMARKS.md"
WRITE=1
INSTALL=1
BUILD=1
KEEP=0
PEERS="portkey litellm"
NOTE=""
# The other gateways measured beside backstop, pinned so runs compare.
PORTKEY_VERSION=1.15.2
LITELLM_VERSION=1.108.7

usage() {
    cat <<'EOF'
Usage: bench/gateway.sh [options]

  --duration D       wrk duration of each measured run (default 10s; --quick: 2s)
  --connections N    wrk connections, i.e. concurrency (default 20)
  --threads N        wrk threads (default: min(nproc, connections))
  --repeat N         runs per measurement; the table quotes medians (default 3; --quick: 1)
  --warmup D         warm-up per target before measuring (default 2s; --quick: 1s)
  --chunks N         content chunks per simulated reply (default 16)
  --rates "R ..."    fixed request rates (req/s) paced beside the saturation runs, non-streaming
                     (default "3000 10000"; "" for none). Each connection waits --pace ms before
                     each request; the connection count is chosen for the rate
  --pace MS          the pause per connection in paced runs (default 10)
  --streams N        concurrent open streams for the memory test (default 1000)
  --hold S           seconds to hold the streams open while sampling RSS (default 5; --quick: 3)
  --quick            short runs to check the script end to end (numbers are indicative only)
  --output FILE      file to write the table into (default: BENCHMARKS.md at the repo root)
  --no-write         print the table only
  --no-install       do not apt-get install wrk / nginx when missing
  --no-build         use the existing release binaries
  --peers "P ..."    other gateways measured beside backstop, where they install: portkey,
                     litellm (default both; "" for none)
  --note TEXT        a note printed with the table (e.g. what else was running)
  --keep-logs        keep the temp dir with logs and raw results
  -h, --help         this help
EOF
}

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=${2:?}; shift 2 ;;
        --connections) CONNECTIONS=${2:?}; shift 2 ;;
        --threads) THREADS=${2:?}; shift 2 ;;
        --repeat) REPEAT=${2:?}; shift 2 ;;
        --warmup) WARMUP=${2:?}; shift 2 ;;
        --chunks) CHUNKS=${2:?}; shift 2 ;;
        --rates) RATES=$2; shift 2 ;;
        --pace) PACE_MS=${2:?}; shift 2 ;;
        --streams) STREAMS=${2:?}; shift 2 ;;
        --hold) STREAMS_HOLD=${2:?}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --output) OUTPUT=${2:?}; shift 2 ;;
        --no-write) WRITE=0; shift ;;
        --no-install) INSTALL=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --keep-logs) KEEP=1; shift ;;
        --peers) PEERS=${2//,/ }; shift 2 ;;
        --note) NOTE=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    : "${DURATION:=2s}" "${REPEAT:=1}" "${WARMUP:=1s}" "${STREAMS_HOLD:=3}"
else
    : "${DURATION:=10s}" "${REPEAT:=3}" "${WARMUP:=2s}" "${STREAMS_HOLD:=5}"
fi

# "10s" / "2m" / "10" → seconds.
to_seconds() {
    case "$1" in
        *[!0-9sm]*|'') die "bad duration '$1' (use e.g. 10s or 1m)" ;;
        *m) echo $(( ${1%m} * 60 )) ;;
        *s) echo "${1%s}" ;;
        *) echo "$1" ;;
    esac
}
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
[ "$DURATION_S" -ge 1 ] || die "--duration must be at least 1s"
[ "$WARMUP_S" -ge 0 ] || die "bad --warmup"
need_int() { # OPTION VALUE
    case "$2" in ''|*[!0-9]*) die "$1 needs a positive integer, got '$2'" ;; esac
    [ "$2" -ge 1 ] || die "$1 must be at least 1"
}
need_int --connections "$CONNECTIONS"
need_int --repeat "$REPEAT"
need_int --streams "$STREAMS"
need_int --chunks "$CHUNKS"
need_int --hold "$STREAMS_HOLD"
[ -z "$THREADS" ] || need_int --threads "$THREADS"
NPROC=$(nproc)
if [ "$WRITE" = 1 ]; then
    case "$OUTPUT" in /*) ;; *) OUTPUT="$PWD/$OUTPUT" ;; esac
    out_dir=$(dirname "$OUTPUT")
    [ -d "$out_dir" ] && [ -w "$out_dir" ] || die "cannot write $OUTPUT: no writable directory $out_dir"
    [ ! -e "$OUTPUT" ] || [ -w "$OUTPUT" ] || die "cannot write $OUTPUT"
fi
if [ -z "$THREADS" ]; then
    THREADS=$(( NPROC < CONNECTIONS ? NPROC : CONNECTIONS ))
fi
[ "$THREADS" -le "$CONNECTIONS" ] || die "--threads must not exceed --connections"

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------

find_nginx() {
    command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

install_tools() {
    local missing=()
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    [ -n "$(find_nginx)" ] || missing+=(nginx)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$INSTALL" = 1 ] || die "missing: ${missing[*]} (and --no-install given)"
    command -v apt-get >/dev/null 2>&1 || die "missing: ${missing[*]}; install them (no apt-get here)"
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing: ${missing[*]}; run as root or install them"
        sudo=(sudo)
    fi
    local pkgs=()
    for m in "${missing[@]}"; do
        case "$m" in nginx) pkgs+=(nginx-light) ;; *) pkgs+=("$m") ;; esac
    done
    log "installing ${pkgs[*]}"
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q)
    if ! "${apt[@]}" "${pkgs[@]}" >&2; then
        # nginx-light is gone from newer Debian releases; the full package works the same here.
        local alt=("${pkgs[@]/nginx-light/nginx}")
        if ! "${apt[@]}" "${alt[@]}" >&2; then
            log "install failed; running apt-get update"
            "${sudo[@]}" apt-get update -q >&2
            "${apt[@]}" "${pkgs[@]}" >&2 || "${apt[@]}" "${alt[@]}" >&2 || die "could not install ${pkgs[*]}"
        fi
    fi
    command -v wrk >/dev/null 2>&1 || die "wrk still missing"
    [ -n "$(find_nginx)" ] || die "nginx still missing"
}

install_tools
NGINX=$(find_nginx)

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release"
if [ "$BUILD" = 1 ]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release --locked -p backstop-gateway -p backstop-sim) >&2
fi
[ -x "$BIN/backstop" ] && [ -x "$BIN/backstop-sim" ] || die "no release binaries in $BIN (build them, or drop --no-build)"

# ---------------------------------------------------------------------------------------
# Other gateways (Portkey, LiteLLM): installed under target/bench-tools/, never fatal
# ---------------------------------------------------------------------------------------

for p in $PEERS; do
    case "$p" in portkey|litellm) ;; *) die "--peers: unknown gateway '$p' (portkey, litellm)" ;; esac
done
TOOLS_DIR="$TARGET_DIR/bench-tools"
PORTKEY_JS="$TOOLS_DIR/portkey/node_modules/@portkey-ai/gateway/build/start-server.js"
LITELLM_VENV="$TOOLS_DIR/litellm-venv"
declare -A SKIP=()   # peer or peer/section → why it is not measured

# install_error LOG: the line of an install log that says what failed (the first "error:").
install_error() {
    { grep -m 1 -iE 'error:' "$1" || tail -n 1 "$1"; } 2>/dev/null | sed 's/^npm error //' | cut -c 1-200
}

install_portkey() {
    [ -f "$PORTKEY_JS" ] && return 0
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
        || { SKIP[portkey]="not installed: node and npm are needed"; return 1; }
    [ "$INSTALL" = 1 ] || { SKIP[portkey]="not installed ($PORTKEY_JS missing, --no-install given)"; return 1; }
    mkdir -p "$TOOLS_DIR/portkey"
    printf '{ "private": true, "dependencies": { "@portkey-ai/gateway": "%s" } }\n' "$PORTKEY_VERSION" \
        >"$TOOLS_DIR/portkey/package.json"
    log "installing @portkey-ai/gateway@$PORTKEY_VERSION into $TOOLS_DIR/portkey (npm)"
    # --ignore-scripts: its only install script is patch-package, and the package ships no patches.
    if ! timeout 600 npm install --prefix "$TOOLS_DIR/portkey" --no-audit --no-fund --ignore-scripts \
        >"$TOOLS_DIR/portkey-install.log" 2>&1 || [ ! -f "$PORTKEY_JS" ]; then
        SKIP[portkey]="not installed: npm install @portkey-ai/gateway@$PORTKEY_VERSION failed: $(install_error "$TOOLS_DIR/portkey-install.log")"
        return 1
    fi
}

install_litellm() {
    [ -x "$LITELLM_VENV/bin/litellm" ] && return 0
    [ "$INSTALL" = 1 ] || { SKIP[litellm]="not installed ($LITELLM_VENV/bin/litellm missing, --no-install given)"; return 1; }
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || { SKIP[litellm]="not installed: LiteLLM needs Python ≥ 3.10"; return 1; }
    log "installing litellm[proxy]==$LITELLM_VERSION into $LITELLM_VENV (pip, a few minutes)"
    if ! { [ -x "$LITELLM_VENV/bin/pip" ] || python3 -m venv "$LITELLM_VENV"; } >"$TOOLS_DIR/litellm-install.log" 2>&1 \
        || ! timeout 900 "$LITELLM_VENV/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION" \
            >>"$TOOLS_DIR/litellm-install.log" 2>&1 \
        || [ ! -x "$LITELLM_VENV/bin/litellm" ]; then
        SKIP[litellm]="not installed: pip install litellm[proxy]==$LITELLM_VERSION failed: $(install_error "$TOOLS_DIR/litellm-install.log")"
        return 1
    fi
}

ACTIVE_PEERS=()
for p in $PEERS; do
    mkdir -p "$TOOLS_DIR"
    if "install_$p"; then ACTIVE_PEERS+=("$p"); else log "$p: ${SKIP[$p]}"; fi
done

# ---------------------------------------------------------------------------------------
# Processes and cleanup
# ---------------------------------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/backstop-bench.XXXXXX")
chmod 755 "$WORK"
RESULTS="$WORK/results.tsv"
META="$WORK/meta.env"
: >"$RESULTS"
: >"$META"
PIDS=()

# Stop one process we started: TERM, wait up to 5 s, then KILL it and any children left.
stop_pid() {
    local pid=$1 children i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    children=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "process $pid did not stop; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    for c in $children; do
        kill -0 "$c" 2>/dev/null && kill -KILL "$c" 2>/dev/null || true
    done
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local i
    if declare -F pause_peer >/dev/null; then  # a stopped peer would not see TERM
        pause_peer portkey CONT; pause_peer litellm CONT
    fi
    for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
        stop_pid "${PIDS[$i]}"
    done
    if [ "$rc" != 0 ]; then
        log "failed (exit $rc); logs:"
        for f in "$WORK"/*.err "$WORK"/nginx-error.log; do
            [ -s "$f" ] || continue
            echo "--- $f (last lines)" >&2
            tail -n 15 "$f" >&2
        done
        log "logs and raw results kept in $WORK"
    elif [ "$KEEP" = 1 ]; then
        log "logs and raw results kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Let every process open enough sockets for the 1,000-stream test.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then ulimit -n 1048576 2>/dev/null || true; else ulimit -n "$hard" 2>/dev/null || true; fi
NOFILE=$(ulimit -n)
[ "$NOFILE" -ge $(( STREAMS * 2 + 256 )) ] || log "warning: open-file limit $NOFILE may be too low for $STREAMS streams"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start NAME CMD... : start in the background, logs in $WORK/NAME.{out,err}; sets LAST_PID.
start() {
    local name=$1; shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# wait_url NAME PID: wait (≤ 10 s) for "listening on http://ADDR" on NAME's stdout; prints ADDR.
wait_url() {
    local name=$1 pid=$2 i addr
    for i in $(seq 1 100); do
        addr=$(sed -n 's#.*listening on http://\([0-9.:]*\).*#\1#p' "$WORK/$name.out" | head -n 1)
        if [ -n "$addr" ]; then echo "$addr"; return 0; fi
        kill -0 "$pid" 2>/dev/null || die "$name exited: $(tail -n 5 "$WORK/$name.err")"
        sleep 0.1
    done
    die "$name did not report its address within 10 s"
}

# start_sim NAME ARGS... → sets PORT (and LAST_PID). Not in $(...): PIDS must be kept.
start_sim() {
    local name=$1; shift
    start "$name" "$BIN/backstop-sim" --listen 127.0.0.1:0 --no-record "$@"
    local addr
    addr=$(wait_url "$name" "$LAST_PID")
    case "$addr" in 127.0.0.1:*) ;; *) die "$name listens on $addr, not loopback" ;; esac
    PORT=${addr#127.0.0.1:}
}

export BACKSTOP_BENCH_UPSTREAM_KEY=sim-key
export BACKSTOP_BENCH_CLIENT_KEYS=bench   # post.lua and streams.py send "Bearer bench"
BACKSTOP_BENCH_ADMIN_KEY="bench-admin-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
export BACKSTOP_BENCH_ADMIN_KEY

# start_gateway NAME → sets PORT and GW_PID.
start_gateway() {
    start "$1" env RUST_LOG=warn "$BIN/backstop" serve --config "$WORK/gateway.toml" --listen 127.0.0.1:0
    GW_PID=$LAST_PID
    local addr
    addr=$(wait_url "$1" "$GW_PID")
    case "$addr" in 127.0.0.1:*) ;; *) die "$1 listens on $addr, not loopback" ;; esac
    PORT=${addr#127.0.0.1:}
}

vm() { # PID FIELD → kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

sim_requests() { # PORT
    curl -sS --max-time 5 "http://127.0.0.1:$1/_sim/stats" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'
}

breaker_state() { # GW_PORT NAME
    curl -sS --max-time 5 -H 'Authorization: Bearer bench' "http://127.0.0.1:$1/v1/breakers" | python3 -c '
import json, sys
name = sys.argv[1]
for b in json.load(sys.stdin)["breakers"]:
    if b["name"] == name:
        print(b["state"]); break
else:
    print("missing")' "$2"
}

BODY_NS='{"model":"MODEL","messages":[{"role":"user","content":"Say something short about fallback chains."}]}'
BODY_ST='{"model":"MODEL","stream":true,"messages":[{"role":"user","content":"Say something short about fallback chains."}]}'

# smoke PORT MODEL STREAM(0|1): one request, must be 200 (and end with [DONE] when streaming);
# prints the response headers' x-backstop-* values.
smoke() {
    local port=$1 model=$2 stream=$3 body out code
    if [ "$stream" = 1 ]; then body=${BODY_ST/MODEL/$model}; else body=${BODY_NS/MODEL/$model}; fi
    out="$WORK/smoke.$port.$model.$stream"
    code=$(curl -sS --max-time 10 -o "$out.body" -D "$out.head" -w '%{http_code}' \
        -H 'Content-Type: application/json' -H 'Authorization: Bearer bench' \
        --data "$body" "http://127.0.0.1:$port/v1/chat/completions") || die "request to port $port failed"
    [ "$code" = 200 ] || die "port $port model $model stream=$stream: HTTP $code: $(head -c 300 "$out.body")"
    if [ "$stream" = 1 ]; then
        grep -q 'data: \[DONE\]' "$out.body" || die "port $port: stream did not end with [DONE]"
    else
        grep -q '"chat.completion"' "$out.body" || die "port $port: not a chat completion: $(head -c 300 "$out.body")"
    fi
    tr -d '\r' <"$out.head" | awk -F': ' 'tolower($1) ~ /^x-backstop-/ { printf "%s=%s ", tolower($1), $2 }'
}

# measure SECTION LABEL RUN PORT MODEL STREAM DURATION [record=1]
measure() {
    local section=$1 label=$2 run=$3 port=$4 model=$5 stream=$6 dur=$7 record=${8:-1}
    local secs out line envs
    secs=$(to_seconds "$dur")
    out="$WORK/wrk.$section.$label.$run.txt"
    envs=(BENCH_MODEL="$model" BENCH_STREAM="$stream")
    [ -z "${M_DELAY:-}" ] || envs+=(BENCH_DELAY_MS="$M_DELAY")
    [ -z "${M_AUTH:-}" ] || envs+=(BENCH_AUTH="$M_AUTH")
    [ -z "${M_HNAME:-}" ] || envs+=(BENCH_HEADER_NAME="$M_HNAME" BENCH_HEADER_VALUE="$M_HVALUE")
    env "${envs[@]}" \
        timeout --kill-after=5 $(( secs + 30 )) \
        wrk -t "$THREADS" -c "${M_CONNS:-$CONNECTIONS}" -d "$dur" --latency -s "$HERE/post.lua" \
        "http://127.0.0.1:$port/v1/chat/completions" >"$out" 2>&1 \
        || die "wrk failed for $section/$label: $(tail -n 5 "$out")"
    line=$(grep '^BENCH_RESULT ' "$out" | tail -n 1)
    [ -n "$line" ] || die "no result from wrk for $section/$label: $(tail -n 5 "$out")"
    [ "$record" = 1 ] || return 0
    python3 - "$section" "$label" "$run" "$line" >>"$RESULTS" <<'EOF'
import sys
section, label, run, line = sys.argv[1:5]
kv = dict(p.split("=", 1) for p in line.split()[1:])
errors = sum(int(kv[k]) for k in
             ("status_errors", "connect_errors", "read_errors", "write_errors", "timeout_errors"))
print("\t".join([section, label, run, kv["rps"], kv["p50_us"], kv["p99_us"], kv["requests"],
                 str(errors)]))
EOF
    tail -n 1 "$RESULTS" | awk -F'\t' -v c="$CONNECTIONS" '{
        printf "bench:   %-3s %-8s run %s: %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms%s\n",
            $1, $2, $3, $4, $5 / 1000, $6 / 1000, ($8 > 0 ? "  ERRORS " $8 : "") }' >&2
}

# ---------------------------------------------------------------------------------------
# Start everything
# ---------------------------------------------------------------------------------------

log "work dir $WORK"
start_sim sim-fast --chunks "$CHUNKS"; FAST_PORT=$PORT
start_sim sim-tripped --chunks "$CHUNKS"; TRIPPED_PORT=$PORT
start_sim sim-slow --chunk-delay-ms 1000 --chunks 30; SLOW_PORT=$PORT
CLOSED_PORT=$(free_port)
# Nothing may listen there: a connection must be refused (curl exit 7).
set +e
curl -sS --max-time 2 -o /dev/null "http://127.0.0.1:$CLOSED_PORT/" 2>/dev/null
rc=$?
set -e
[ "$rc" = 7 ] || die "port $CLOSED_PORT does not refuse connections (curl exit $rc)"

sed -e "s/@FAST_PORT@/$FAST_PORT/g" -e "s/@TRIPPED_PORT@/$TRIPPED_PORT/g" \
    -e "s/@SLOW_PORT@/$SLOW_PORT/g" -e "s/@CLOSED_PORT@/$CLOSED_PORT/g" \
    "$HERE/configs/gateway.toml" >"$WORK/gateway.toml"
"$BIN/backstop" config check "$WORK/gateway.toml" >"$WORK/config-check.txt" 2>&1 \
    || die "bench config invalid: $(cat "$WORK/config-check.txt")"

start_gateway gateway; GW_PORT=$PORT
GW_MAIN_PID=$GW_PID
sleep 0.5
GW_IDLE_KB=$(vm "$GW_MAIN_PID" VmRSS)

# nginx: a fixed free high port, its own prefix, config, pid and logs; foreground.
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx-tmp"
chmod 1777 "$WORK/nginx-tmp"
USER_LINE=""
if [ "$(id -u)" = 0 ]; then
    # Workers drop root; proxy_buffering is off, so they need no writable temp files.
    if id www-data >/dev/null 2>&1; then USER_LINE="user www-data;"
    else USER_LINE="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"; fi
fi
sed -e "s#@USER_LINE@#$USER_LINE#" -e "s#@WORKERS@#$NPROC#" -e "s#@NOFILE@#$NOFILE#" \
    -e "s#@DIR@#$WORK#g" -e "s#@SIM_PORT@#$FAST_PORT#" -e "s#@PORT@#$NGINX_PORT#" \
    "$HERE/nginx.conf.template" >"$WORK/nginx.conf"
"$NGINX" -t -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >"$WORK/nginx-t.txt" 2>&1 \
    || die "nginx config test failed: $(cat "$WORK/nginx-t.txt")"
start nginx "$NGINX" -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log"
NGINX_PID=$LAST_PID
for i in $(seq 1 100); do
    curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$NGINX_PORT/_sim/stats" && break
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited: $(tail -n 5 "$WORK/nginx-error.log" 2>/dev/null)"
    [ "$i" = 100 ] && die "nginx did not answer within 10 s"
    sleep 0.1
done

log "simulator :$FAST_PORT, gateway :$GW_PORT, nginx :$NGINX_PORT, tripped-primary simulator :$TRIPPED_PORT, slow simulator :$SLOW_PORT, closed port :$CLOSED_PORT"

# wait_http NAME PID URL SECONDS: until URL answers (any status); else sets SKIP[NAME], returns 1.
wait_http() {
    local name=$1 pid=$2 url=$3 secs=$4 i
    for i in $(seq 1 $(( secs * 5 ))); do
        curl -s --max-time 1 -o /dev/null "$url" && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            SKIP[$name]="not measured: $name exited at start-up: $(cat "$WORK/$name.err" "$WORK/$name.out" 2>/dev/null | tr '\r\033' '\n\n' | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c 1-200)"
            return 1
        fi
        sleep 0.2
    done
    SKIP[$name]="not measured: $name did not answer within $secs s"
    return 1
}

# loopback_only NAME PORT: every listening socket on PORT is on 127.0.0.1 (checked with ss).
loopback_only() {
    local addrs
    command -v ss >/dev/null 2>&1 || return 0
    addrs=$(ss -Hltn "sport = :$2" | awk '{ print $4 }')
    if [ -z "$addrs" ] || echo "$addrs" | grep -qv '^127\.0\.0\.1:'; then
        SKIP[$1]="not measured: $1 listens on '$(echo $addrs)', not only on 127.0.0.1"
        return 1
    fi
}

# Portkey: its start-up script takes only --port= and --headless (no UI, no log stream) and
# listens on every interface, so node_loopback.mjs binds it to 127.0.0.1. The fallback config
# travels in the x-portkey-config header of every request: two OpenAI-compatible targets
# (custom_host, with /v1) on the fast simulator, like backstop's chain `bench`.
start_portkey() {
    PORTKEY_PORT=$(free_port)
    start portkey node --import "$HERE/node_loopback.mjs" "$PORTKEY_JS" --port="$PORTKEY_PORT" --headless
    PORTKEY_PID=$LAST_PID
    if ! wait_http portkey "$PORTKEY_PID" "http://127.0.0.1:$PORTKEY_PORT/" 30 \
        || ! loopback_only portkey "$PORTKEY_PORT"; then
        stop_pid "$PORTKEY_PID"; return 1
    fi
    local target="{\"provider\":\"openai\",\"api_key\":\"$BACKSTOP_BENCH_UPSTREAM_KEY\",\"custom_host\":\"http://127.0.0.1:$FAST_PORT/v1\"}"
    PORTKEY_CONFIG="{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[$target,$target]}"
}

# LiteLLM: offline cost map, a master key, no database; primary `bench` and fallback
# `bench-fallback`, both the fast simulator; its default single uvicorn worker; the uvicorn
# access log off (nginx's is off too, and the gateway logs at warn).
start_litellm() {
    LITELLM_PORT=$(free_port)
    LITELLM_MASTER_KEY="sk-bench-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
    sed -e "s/@FAST_PORT@/$FAST_PORT/g" "$HERE/configs/litellm.yaml" >"$WORK/litellm.yaml"
    start litellm env LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_MASTER_KEY="$LITELLM_MASTER_KEY" \
        "$LITELLM_VENV/bin/litellm" --config "$WORK/litellm.yaml" --host 127.0.0.1 \
        --port "$LITELLM_PORT" --num_workers 1 --log_config "$HERE/configs/litellm-logging.json"
    LITELLM_PID=$LAST_PID
    if ! wait_http litellm "$LITELLM_PID" "http://127.0.0.1:$LITELLM_PORT/health/liveliness" 90 \
        || ! loopback_only litellm "$LITELLM_PORT"; then
        stop_pid "$LITELLM_PID"; return 1
    fi
}

# pause_peer NAME STOP|CONT: the peer's processes (and their children) stop while other targets
# are measured: idle, LiteLLM still takes a third of a core and Portkey a sixth, which would
# be taken from whatever is being measured on these 2 cores.
peer_pid() { case "$1" in portkey) echo "${PORTKEY_PID:-}" ;; litellm) echo "${LITELLM_PID:-}" ;; esac; }
tree_pids() { local p; echo "$1"; for p in $(pgrep -P "$1" 2>/dev/null); do tree_pids "$p"; done; }
pause_peer() {
    local pid; pid=$(peer_pid "$1"); [ -n "$pid" ] || return 0
    kill -"$2" $(tree_pids "$pid") 2>/dev/null || true
}
peer_port() { case "$1" in portkey) echo "$PORTKEY_PORT" ;; litellm) echo "$LITELLM_PORT" ;; esac; }
peer_auth() { case "$1" in litellm) echo "Bearer $LITELLM_MASTER_KEY" ;; *) echo "Bearer bench" ;; esac; }

# check_peer NAME STREAM(0|1): one request through the peer must be 200 and a chat completion
# (or an SSE stream ending in [DONE]); else sets SKIP[NAME/ns|st] and returns 1.
check_peer() {
    local name=$1 stream=$2 sec=ns body out code hdr=() why=""
    [ "$stream" = 1 ] && sec=st
    if [ "$stream" = 1 ]; then body=${BODY_ST/MODEL/bench}; else body=${BODY_NS/MODEL/bench}; fi
    [ "$name" = portkey ] && hdr=(-H "x-portkey-config: $PORTKEY_CONFIG")
    out="$WORK/check.$name.$sec"
    code=$(curl -sS --max-time 30 -o "$out.body" -w '%{http_code}' -H 'Content-Type: application/json' \
        -H "Authorization: $(peer_auth "$name")" "${hdr[@]}" --data "$body" \
        "http://127.0.0.1:$(peer_port "$name")/v1/chat/completions" 2>"$out.err") || code="curl failed: $(tail -n 1 "$out.err")"
    if [ "$code" != 200 ]; then
        why="HTTP $code: $(head -c 200 "$out.body" 2>/dev/null)"
    elif [ "$stream" = 1 ] && ! grep -q 'data: \[DONE\]' "$out.body"; then
        why="the stream did not end with [DONE]"
    elif [ "$stream" = 0 ] && ! grep -q '"chat.completion"' "$out.body"; then
        why="not a chat completion: $(head -c 200 "$out.body")"
    fi
    [ -z "$why" ] && return 0
    local err
    err=$(cat "$WORK/$name.out" "$WORK/$name.err" 2>/dev/null | tr '\r\033' '\n\n' \
        | grep -oE '([A-Za-z]+ )?[A-Za-z]*(Error|error)[: ].*' | tail -n 1 | cut -c 1-160)
    SKIP[$name/$sec]="not measured: check failed: $why${err:+ (its log: $err)}"
    return 1
}

# Which peer rows are measured: each mode is checked on its own.
PEER_ROWS=()   # "portkey/ns" ...
for p in "${ACTIVE_PEERS[@]}"; do
    if "start_$p"; then
        for st in 0 1; do
            sec=ns; [ "$st" = 1 ] && sec=st
            if check_peer "$p" "$st"; then PEER_ROWS+=("$p/$sec"); else log "$p $sec: ${SKIP[$p/$sec]}"; fi
        done
        log "$p on :$(peer_port "$p")"
        pause_peer "$p" STOP
    else
        log "$p: ${SKIP[$p]}"
    fi
done

# Every path answers, and streams end properly.
for s in 0 1; do
    smoke "$FAST_PORT" bench "$s" >/dev/null
    smoke "$NGINX_PORT" bench "$s" >/dev/null
    h=$(smoke "$GW_PORT" bench "$s")
    case "$h" in *"x-backstop-provider=primary"*) ;; *) die "chain bench not answered by primary: $h" ;; esac
done
FAILOVER_HEADERS=$(smoke "$GW_PORT" failover 0)
case "$FAILOVER_HEADERS" in
    *"x-backstop-provider=primary"*) ;;
    *) die "chain failover not answered by the secondary: $FAILOVER_HEADERS" ;;
esac
FAILOVER_ATTEMPTS=$(echo "$FAILOVER_HEADERS" | sed -n 's/.*x-backstop-attempts=\([0-9]*\).*/\1/p')

# Open the tripped primary's breaker before any load reaches it; it stays open (1 h recovery).
trip=$(curl -sS --max-time 5 -X POST -H "Authorization: Bearer $BACKSTOP_BENCH_ADMIN_KEY" \
    "http://127.0.0.1:$GW_PORT/v1/breakers/tripped/trip")
[ "$(breaker_state "$GW_PORT" tripped)" = open ] || die "could not trip the breaker: $trip"
h=$(smoke "$GW_PORT" breaker 0)
case "$h" in *"x-backstop-provider=primary"*) ;; *) die "chain breaker not answered by the secondary: $h" ;; esac
TRIPPED_BEFORE=$(sim_requests "$TRIPPED_PORT")

# ---------------------------------------------------------------------------------------
# (a)–(d): wrk
# ---------------------------------------------------------------------------------------

runs_per_repeat=$(( 9 + 3 * $(echo $RATES | wc -w) + ${#PEER_ROWS[@]} ))
total=$(( WARMUP_S * (5 + ${#PEER_ROWS[@]}) + DURATION_S * runs_per_repeat * REPEAT ))

# run_target SECTION TARGET RUN STREAM DURATION [record]: one wrk run against a named path.
run_target() {
    local section=$1 target=$2 run=$3 stream=$4 dur=$5 record=${6:-1}
    case "$target" in
        direct) measure "$section" direct "$run" "$FAST_PORT" bench "$stream" "$dur" "$record" ;;
        gateway) measure "$section" gateway "$run" "$GW_PORT" bench "$stream" "$dur" "$record" ;;
        nginx) measure "$section" nginx "$run" "$NGINX_PORT" bench "$stream" "$dur" "$record" ;;
        portkey) pause_peer portkey CONT; M_HNAME=x-portkey-config M_HVALUE=$PORTKEY_CONFIG \
            measure "$section" portkey "$run" "$PORTKEY_PORT" bench "$stream" "$dur" "$record"
            pause_peer portkey STOP ;;
        litellm) pause_peer litellm CONT; M_AUTH="Bearer $LITELLM_MASTER_KEY" \
            measure "$section" litellm "$run" "$LITELLM_PORT" bench "$stream" "$dur" "$record"
            pause_peer litellm STOP ;;
    esac
}
# has_row PEER SECTION: that peer row passed its check.
has_row() { local r; for r in "${PEER_ROWS[@]}"; do [ "$r" = "$1/$2" ] && return 0; done; return 1; }
log "measuring: $REPEAT × $runs_per_repeat runs of $DURATION, $CONNECTIONS connections, $THREADS wrk threads (about $(( total / 60 )) min $(( total % 60 )) s)"

if [ "$WARMUP_S" -gt 0 ]; then
    log "warming up"
    measure warm direct 0 "$FAST_PORT" bench 0 "${WARMUP_S}s" 0
    measure warm gateway 0 "$GW_PORT" bench 0 "${WARMUP_S}s" 0
    measure warm nginx 0 "$NGINX_PORT" bench 0 "${WARMUP_S}s" 0
    measure warm failover 0 "$GW_PORT" failover 0 "${WARMUP_S}s" 0
    measure warm breaker 0 "$GW_PORT" breaker 0 "${WARMUP_S}s" 0
    for r in "${PEER_ROWS[@]}"; do
        st=0; [ "${r#*/}" = st ] && st=1
        run_target warm "${r%/*}" 0 "$st" "${WARMUP_S}s" 0
    done
fi

for run in $(seq 1 "$REPEAT"); do
    log "run $run of $REPEAT"
    # Rotate the order of the paths from run to run, so none always goes first.
    order=(direct gateway nginx)
    for stream in 0 1; do
        section=ns; [ "$stream" = 1 ] && section=st
        paths=(direct gateway nginx)
        for p in "${ACTIVE_PEERS[@]}"; do has_row "$p" "$section" && paths+=("$p"); done
        for (( k = 0; k < ${#paths[@]}; k++ )); do
            run_target "$section" "${paths[$(( (k + run - 1) % ${#paths[@]} ))]}" "$run" "$stream" "$DURATION"
        done
    done
    # Fixed rates: each connection pauses PACE_MS before each request (wrk's delay()), so a
    # connection sends about 1000 / (PACE_MS + latency) req/s; the count is chosen for the rate.
    # (Portkey and LiteLLM saturate far below these rates: saturation runs only.)
    for rate in $RATES; do
        for k in 0 1 2; do
            M_CONNS=$(( (rate * (PACE_MS + 1) + 999) / 1000 )) M_DELAY=$PACE_MS \
                run_target "r$rate" "${order[$(( (k + run - 1) % 3 ))]}" "$run" 0 "$DURATION"
        done
    done
    measure fo healthy "$run" "$GW_PORT" bench 0 "$DURATION"
    measure fo refused "$run" "$GW_PORT" failover 0 "$DURATION"
    measure fo breaker "$run" "$GW_PORT" breaker 0 "$DURATION"
done

GW_HWM_KB=$(vm "$GW_MAIN_PID" VmHWM)
GW_AFTER_KB=$(vm "$GW_MAIN_PID" VmRSS)
TRIPPED_AFTER=$(sim_requests "$TRIPPED_PORT")
BREAKER_STATE=$(breaker_state "$GW_PORT" tripped)
REFUSED_BREAKER_STATE=$(breaker_state "$GW_PORT" refused)
[ "$BREAKER_STATE" = open ] || log "warning: the tripped breaker is $BREAKER_STATE, not open"
[ "$REFUSED_BREAKER_STATE" = closed ] || log "warning: the refusing primary's breaker is $REFUSED_BREAKER_STATE"
TRIPPED_SIM_REQUESTS=$(( TRIPPED_AFTER - TRIPPED_BEFORE ))
[ "$TRIPPED_AFTER" = 0 ] || log "warning: the primary behind the open breaker received $TRIPPED_AFTER requests"

# The load runs are over: stop the gateway and nginx so (e) runs on a quiet, fresh gateway.
stop_pid "$NGINX_PID"
stop_pid "$GW_MAIN_PID"
pause_peer portkey CONT; pause_peer litellm CONT
[ -z "${PORTKEY_PID:-}" ] || stop_pid "$PORTKEY_PID"
[ -z "${LITELLM_PID:-}" ] || stop_pid "$LITELLM_PID"

# ---------------------------------------------------------------------------------------
# (e): RSS idle and with N open streams, on a fresh gateway
# ---------------------------------------------------------------------------------------

log "memory: $STREAMS concurrent streams on a fresh gateway"
start_gateway gateway-streams; GW2_PORT=$PORT
GW2_PID=$GW_PID
sleep 1
STREAMS_JSON=$(timeout --kill-after=5 120 python3 "$HERE/streams.py" --port "$GW2_PORT" \
    --model slow --count "$STREAMS" --pid "$GW2_PID" --hold "$STREAMS_HOLD" --timeout 60 \
    2>"$WORK/streams.err") || die "stream test failed: $(tail -n 5 "$WORK/streams.err")"
echo "$STREAMS_JSON" >"$WORK/streams.json"
stop_pid "$GW2_PID"

# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }')
{
    echo "DATE=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "NPROC=$NPROC"
    echo "CPU=${cpu:-unknown}"
    echo "KERNEL=$(uname -sr)"
    echo "WRK_VERSION=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
    echo "NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
    echo "BACKSTOP_VERSION=$("$BIN/backstop" --version 2>/dev/null)"
    echo "DURATION=$DURATION"
    echo "WARMUP=$WARMUP"
    echo "CONNECTIONS=$CONNECTIONS"
    echo "THREADS=$THREADS"
    echo "REPEAT=$REPEAT"
    echo "CHUNKS=$CHUNKS"
    echo "RATES=$RATES"
    echo "PACE_MS=$PACE_MS"
    echo "QUICK=$QUICK"
    echo "PEERS=$PEERS"
    echo "NOTE=${NOTE//$'\n'/ }"
    echo "PORTKEY_VERSION=$PORTKEY_VERSION"
    echo "LITELLM_VERSION=$LITELLM_VERSION"
    echo "NODE_VERSION=$(node --version 2>/dev/null || echo none)"
    for k in "${!SKIP[@]}"; do
        v=${SKIP[$k]//$'\n'/ }
        echo "SKIP_${k/\//_}=${v//$'\r'/ }"
    done
    echo "GW_IDLE_KB=$GW_IDLE_KB"
    echo "GW_HWM_KB=$GW_HWM_KB"
    echo "GW_AFTER_KB=$GW_AFTER_KB"
    echo "TRIPPED_SIM_REQUESTS=$TRIPPED_SIM_REQUESTS"
    echo "BREAKER_STATE=$BREAKER_STATE"
    echo "REFUSED_BREAKER_STATE=$REFUSED_BREAKER_STATE"
    echo "FAILOVER_ATTEMPTS=$FAILOVER_ATTEMPTS"
    echo "STREAMS=$STREAMS"
    echo "STREAMS_HOLD=$STREAMS_HOLD"
    echo "STREAMS_JSON=$STREAMS_JSON"
} >"$META"

out_args=()
[ "$WRITE" = 1 ] && out_args=(--output "$OUTPUT")
echo
python3 "$HERE/report.py" --results "$RESULTS" --meta "$META" "${out_args[@]}"
