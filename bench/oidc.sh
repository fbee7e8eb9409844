#!/usr/bin/env bash
# oidc.sh [go test flags...]
#
# Verifying a cached-key ID token issued by the real OpenID provider
# (zitadel's example OP, RS256): lpsec's auth/oidc Verifier against
# go-oidc's own IDTokenVerifier on the same token. Target: ratio <= 1.2.
# The two alternate COUNT times (default 8, BENCHTIME default 0.5s) and the
# fastest run of each is compared, since the machine may be shared: the
# minimum is the least disturbed measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench '^BenchmarkVerifyIDToken$' -benchmem -count "${COUNT:-8}" \
  -benchtime "${BENCHTIME:-0.5s}" "$@" ./auth/oidc/ 2>&1) || { echo "$out"; exit 1; }
echo "$out"
echo
echo "$out" | awk '
  /^BenchmarkVerifyIDToken\// {
    ns=""; for (i=2;i<=NF;i++) if ($(i)=="ns/op") ns=$(i-1)
    if ($1 ~ /\/lpsec/) { if (l=="" || ns+0 < l+0) l=ns }
    else if ($1 ~ /\/baseline/) { if (b=="" || ns+0 < b+0) b=ns }
  }
  END { printf "%-40s %14s %14s %8s\n", "benchmark (fastest run)", "lpsec ns/op", "go-oidc ns/op", "ratio"
        printf "%-40s %14s %14s %8.3f\n", "BenchmarkVerifyIDToken", l, b, l/b }'
