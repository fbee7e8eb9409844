#!/usr/bin/env bash
# macaroon-middleware.sh [go test flags...]
#
# The cost of macaroon's HTTP middleware (Service.Require) over
# Service.VerifyRequest alone on the same request (target: ratio <= 1.05).
# BenchmarkMiddleware runs the two as sub-benchmarks (bench/ratio.sh's
# lpsec/baseline form); BenchmarkMiddlewareInterleaved times them
# alternately in small batches inside one loop, so load from other jobs on a
# shared machine falls on both alike, and reports the ratio itself. Each runs
# COUNT times (default 8); the medians are printed. BENCHTIME (default 0.5s)
# sets -benchtime.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! out=$(go test -run '^$' -bench '^BenchmarkMiddleware(Interleaved)?$' -benchmem -count "${COUNT:-8}" \
  -benchtime "${BENCHTIME:-0.5s}" "$@" ./macaroon/ 2>&1); then
  echo "$out"
  echo "macaroon-middleware.sh: go test failed" >&2
  exit 1
fi
echo "$out"
echo
echo "$out" | awk '
  function median(a, n,   i, j, t) {
    for (i=2;i<=n;i++) { t=a[i]; for (j=i-1;j>=1 && a[j]>t;j--) a[j+1]=a[j]; a[j+1]=t }
    return n%2 ? a[(n+1)/2] : (a[n/2]+a[n/2+1])/2
  }
  /^BenchmarkMiddleware\/(lpsec|baseline)/ {
    for (i=2;i<=NF;i++) if ($(i)=="ns/op") ns=$(i-1)
    if ($1 ~ /lpsec/) l[++nl]=ns; else b[++nb]=ns
  }
  /^BenchmarkMiddlewareInterleaved/ {
    for (i=2;i<=NF;i++) if ($(i)=="ratio") r[++nr]=$(i-1)
  }
  END {
    if (nl==0 || nb==0 || nr==0) { print "missing benchmark results"; exit 1 }
    printf "%-44s %12s %14s %8s\n", "benchmark (median of runs)", "lpsec ns/op", "baseline ns/op", "ratio"
    printf "%-44s %12.0f %14.0f %8.3f\n", "BenchmarkMiddleware (separate runs)", median(l, nl), median(b, nb), median(l, nl)/median(b, nb)
    printf "%-44s %12s %14s %8.3f\n", "BenchmarkMiddlewareInterleaved (same loop)", "-", "-", median(r, nr)
  }'
