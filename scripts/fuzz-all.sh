#!/usr/bin/env bash
# fuzz-all.sh: runs every FuzzXxx target in the module for $FUZZTIME each
# (default 3s). Targets are found with `go test -list`, so a new one is
# covered without editing anything.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3s}
count=0
for pkg in $(go list ./...); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for target in $targets; do
    echo "fuzz: $pkg $target ($FUZZTIME)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/lpsec-fuzz.$$.log 2>&1 || {
      cat /tmp/lpsec-fuzz.$$.log
      rm -f /tmp/lpsec-fuzz.$$.log
      echo "fuzz: $pkg $target FAILED (the failing input is under $(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$target)"
      exit 1
    }
    count=$((count + 1))
  done
done
rm -f /tmp/lpsec-fuzz.$$.log
echo "fuzz: $count targets ran for $FUZZTIME each, no failures"
