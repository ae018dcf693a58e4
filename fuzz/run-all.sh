#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600), two at a time, then minimises each
# target's corpus with `cargo fuzz cmin` and prints, per target: executions, corpus size and
# crashes. Works on stable Rust through RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags).
#
#   fuzz/run-all.sh [SECONDS] [--no-save] [--sanitizer none|address]
#
# Working corpora grow under fuzz/target/corpus/<target> (ignored by git), seeded from the
# committed fuzz/corpus/<target>. After minimising, inputs that add coverage beyond the
# committed seeds are merged into fuzz/corpus/<target> (libFuzzer -merge=1: only new
# coverage is added, existing seeds stay) unless --no-save is given. Crashes land in
# fuzz/artifacts/<target>/; logs in fuzz/target/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")"

seconds=600
save=1
sanitizer=address
while [ $# -gt 0 ]; do
  case "$1" in
    --no-save) save=0 ;;
    --sanitizer) sanitizer="$2"; shift ;;
    --sanitizer=*) sanitizer="${1#*=}" ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *[!0-9]*|'') echo "usage: $0 [SECONDS] [--no-save] [--sanitizer none|address]" >&2; exit 2 ;;
    *) seconds="$1" ;;
  esac
  shift
done

export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 1; }

targets=$(cargo fuzz list)
fuzz_opts=(--sanitizer "$sanitizer")
mkdir -p target/logs target/corpus

echo "== building all targets (sanitizer: $sanitizer)"
cargo fuzz build "${fuzz_opts[@]}"

count_files() {
  if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi
}

# Crash files present before this run, so only new ones are counted.
declare -A before
for t in $targets; do
  before[$t]=$(count_files "artifacts/$t")
done

run_one() {
  local t="$1"
  mkdir -p "target/corpus/$t" "corpus/$t"
  # The first corpus dir receives new inputs; the committed seeds are only read.
  cargo fuzz run "${fuzz_opts[@]}" "$t" "target/corpus/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=30 \
    > "target/logs/$t.log" 2>&1 || true
  echo "   done: $t"
}

echo "== fuzzing each target for ${seconds}s, two at a time"
running=0
for t in $targets; do
  if [ "$running" -ge 2 ]; then
    wait -n || true
    running=$((running - 1))
  fi
  echo "   start: $t"
  run_one "$t" &
  running=$((running + 1))
done
wait

echo "== minimising corpora"
for t in $targets; do
  # Seeds count towards coverage, so the minimised working corpus covers them too.
  cp -n "corpus/$t"/* "target/corpus/$t"/ 2>/dev/null || true
  cargo fuzz cmin "${fuzz_opts[@]}" "$t" "target/corpus/$t" > "target/logs/$t.cmin.log" 2>&1 || true
  if [ "$save" = 1 ]; then
    cargo fuzz run "${fuzz_opts[@]}" "$t" "corpus/$t" "target/corpus/$t" -- -merge=1 \
      > "target/logs/$t.merge.log" 2>&1 || true
  fi
done

echo
printf '%-22s %14s %10s %10s %8s\n' target executions corpus seeds crashes
for t in $targets; do
  log="target/logs/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
  [ -n "$execs" ] || execs="?"
  corpus=$(count_files "target/corpus/$t")
  seeds=$(count_files "corpus/$t")
  after=$(count_files "artifacts/$t")
  crashes=$((after - ${before[$t]}))
  printf '%-22s %14s %10s %10s %8s\n' "$t" "$execs" "$corpus" "$seeds" "$crashes"
done
echo
echo "corpus: minimised working corpus (fuzz/target/corpus); seeds: committed fuzz/corpus"
if [ "$(count_files artifacts)" -gt 0 ]; then
  echo "artifacts (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET FILE):"
  find artifacts -type f | sort
fi
