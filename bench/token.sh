#!/usr/bin/env bash
# token.sh [go test flags...]
#
# The token benchmarks printed together: Generate, Parse, and authentication
# against the memory store and against PostgreSQL (a throwaway cluster started
# by scripts/with-postgres.sh), each beside its baseline, with lpsec/baseline
# ratios. BENCHTIME (default 0.3s) sets -benchtime.
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./scripts/with-postgres.sh ./bench/ratio.sh ./token/ '^Benchmark(Generate|Parse|Authenticate)' \
  -benchtime "${BENCHTIME:-0.3s}" "$@"
