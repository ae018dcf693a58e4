#!/usr/bin/env bash
# Public-API check for the library: renders its public API (all features) from rustdoc JSON
# with .ci/api.py and compares it with the committed listing, crates/backstop/api.txt, so a
# change to the API is always deliberate and visible in review.
#
# rustdoc's JSON output is unstable; stable rustdoc emits it with RUSTC_BOOTSTRAP=1 (as the
# fuzz targets build on stable). The JSON format follows the toolchain: a new toolchain may
# re-spell lines, which then need one `--bless`.
#
# After a deliberate API change:   .ci/api-check.sh --bless   (and commit api.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

RUSTC_BOOTSTRAP=1 cargo rustdoc -p backstop --all-features --lib --locked --quiet \
  -- -Z unstable-options --output-format json
python3 .ci/api.py target/doc/backstop.json > target/api.txt

if [ "${1-}" = "--bless" ]; then
  cp target/api.txt crates/backstop/api.txt
  echo "crates/backstop/api.txt updated ($(wc -l < target/api.txt) lines)"
  exit 0
fi
if ! diff -u crates/backstop/api.txt target/api.txt; then
  echo
  echo "The library's public API changed (diff above: - committed, + now)."
  echo "If that is deliberate, run .ci/api-check.sh --bless and commit crates/backstop/api.txt."
  exit 1
fi
echo "public API unchanged ($(wc -l < target/api.txt) lines)"
