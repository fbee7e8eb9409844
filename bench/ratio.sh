#!/usr/bin/env bash
# ratio.sh PKG BENCH_REGEX [go test flags...]
#
# Runs the benchmarks and prints, for every benchmark that has sub-benchmarks
# named "lpsec" and "baseline" (BenchmarkX/lpsec, BenchmarkX/baseline), the two
# ns/op figures and their ratio lpsec/baseline, measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=${1:?usage: ratio.sh PKG BENCH_REGEX [go test flags...]}
re=${2:?usage: ratio.sh PKG BENCH_REGEX [go test flags...]}
shift 2
# The output is kept (and shown) even when go test fails, so a failing
# benchmark says why instead of vanishing under set -e.
if ! out=$(go test -run '^$' -bench "$re" -benchmem "$@" "$pkg" 2>&1); then
  echo "$out"
  echo "ratio.sh: go test failed for $pkg" >&2
  exit 1
fi
echo "$out"
echo
echo "$out" | awk '
  /^Benchmark/ {
    name=$1; sub(/-[0-9]+$/, "", name)
    ns=""; for (i=2;i<=NF;i++) if ($(i)=="ns/op") ns=$(i-1)
    n=split(name, parts, "/"); leaf=parts[n]
    base=name; sub("/" leaf "$", "", base)
    if (leaf=="lpsec") l[base]=ns
    else if (leaf=="baseline") b[base]=ns
  }
  END {
    printf "%-60s %14s %14s %8s\n", "benchmark", "lpsec ns/op", "baseline ns/op", "ratio"
    for (k in l) if (k in b && b[k] > 0) printf "%-60s %14s %14s %8.3f\n", k, l[k], b[k], l[k]/b[k]
  }'
