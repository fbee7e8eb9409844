#!/usr/bin/env bash
# token.sh [benchratio flags...]
#
# The token benchmarks printed together: Generate, Parse, and authentication
# against the memory store (token) and against PostgreSQL (token/tokenpg, a
# throwaway cluster started by scripts/with-postgres.sh), each beside its
# baseline, with lpsec/baseline ratios from CPU and wall time (bench/ratio.sh).
# BENCHTIME (default 300ms) sets the time per sample.
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./scripts/with-postgres.sh ./bench/ratio.sh './token ./token/tokenpg' '^Benchmark(Generate|Parse|Authenticate)' \
  -benchtime "${BENCHTIME:-300ms}" "$@"
