#!/usr/bin/env bash
# all.sh (make bench): every paired benchmark in the module (BenchmarkX/lpsec
# beside BenchmarkX/baseline), PostgreSQL ones included (a throwaway cluster
# from scripts/with-postgres.sh), as medians of COUNT samples (default 6)
# with their spread, from CPU time per operation and wall time
# (tools/benchratio says how), benchstat's tables, then every ratio against
# its target in bench/targets. Exits 1 when a target is not met.
#
# It took 6.5 minutes on the 2-core machine under load from other jobs (BENCHTIME=200ms;
# the bcrypt, TLS and PostgreSQL set-ups dominate). COUNT=3 BENCHTIME=100ms
# halves it; BENCH=RE limits it to the top-level benchmarks matching RE.
# Samples are kept in bench/out/ (gitignored) for benchstat comparisons.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-$(sed -n 's/^toolchain //p' go.mod)}
mkdir -p bench/out
out=bench/out/bench-$(date -u +%Y%m%dT%H%M%SZ).txt
bin=$(mktemp -d "${TMPDIR:-/tmp}/lpsec-bench.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go -C tools build -o "$bin/benchratio" ./benchratio

mapfile -t pkgs < <(grep -rl --include='*_test.go' -E '^func Benchmark' . \
  | grep -v -e '/testdata/' -e '^\./tools/' | xargs -n1 dirname | sort -u)
status=0
./scripts/with-postgres.sh "$bin/benchratio" -count "${COUNT:-6}" -benchtime "${BENCHTIME:-200ms}" \
  -bench "${BENCH:-.}" -targets bench/targets -out "$out" "${pkgs[@]}" >"$bin/ratios" || status=$?
if [ -s "$out" ]; then
  go tool -modfile=tools/go.mod benchstat "$out"
  echo
  echo "samples: $out (compare two runs: go tool -modfile=tools/go.mod benchstat OLD NEW)"
fi
cat "$bin/ratios"
exit "$status"
