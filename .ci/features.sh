#!/usr/bin/env bash
# Checks that every feature combination of the library compiles without a warning
# (`cargo hack --feature-powerset` is not installed here; this is that loop, over what matters).
#
# - The powerset of the features that change code: openai, anthropic, groq, testing, tower,
#   reqwest-middleware (64 combinations), all without a TLS backend.
# - The TLS backends, which only select reqwest features: every subset of rustls-aws-lc,
#   rustls-ring and native-tls with a provider (8), and each alone without one (3).
# `http` is internal (implied by every provider and by reqwest-middleware) and not listed.
#
# `cargo check` only (no codegen); dependencies are checked once per distinct feature set.
set -euo pipefail
cd "$(dirname "$0")/.."

logic=(openai anthropic groq testing tower reqwest-middleware)
tls=(rustls-aws-lc rustls-ring native-tls)

combos=()
n=${#logic[@]}
for ((mask = 0; mask < (1 << n); mask++)); do
  set_=()
  for ((i = 0; i < n; i++)); do
    if (( mask & (1 << i) )); then set_+=("${logic[i]}"); fi
  done
  combos+=("$(IFS=,; echo "${set_[*]-}")")
done
m=${#tls[@]}
for ((mask = 0; mask < (1 << m); mask++)); do
  set_=(openai)
  for ((i = 0; i < m; i++)); do
    if (( mask & (1 << i) )); then set_+=("${tls[i]}"); fi
  done
  combos+=("$(IFS=,; echo "${set_[*]}")")
done
combos+=("${tls[@]}")

log=target/features-check.log
failed=0
start=$SECONDS
for features in "${combos[@]}"; do
  if ! cargo check -p backstop --locked --quiet --no-default-features --features "$features" \
      --message-format short > "$log" 2>&1; then
    echo "FAILED: --no-default-features --features '$features'"
    cat "$log"
    failed=1
    continue
  fi
  if grep -q "warning" "$log"; then
    echo "WARNINGS: --no-default-features --features '$features'"
    cat "$log"
    failed=1
  fi
done
echo "checked ${#combos[@]} feature combinations in $((SECONDS - start)) s"
exit "$failed"
