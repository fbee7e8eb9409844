#!/usr/bin/env bash
# fuzz-all.sh: runs every FuzzXxx target in the module for $FUZZTIME each
# (default 3s). Targets are found with `go test -list`, so a new one is
# covered without editing anything.
#
# Go's fuzz coordinator up to Go 1.26 can report a bare "context deadline
# exceeded" failure when -fuzztime expires while a worker is mid-call
# (go.dev/issue/75804, fixed in Go 1.27). Such a run writes no failing input
# and prints no panic or test error. It is run again with a count budget
# (-fuzztime Nx, N = the executions the timed run reached), which has no
# wall-clock deadline to race; any run that wrote a reproducer, panicked or
# failed otherwise fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3s}
log=$(mktemp /tmp/lpsec-fuzz.XXXXXX)
trap 'rm -f "$log"' EXIT

# coordinator_flake reports whether the log shows only go.dev/issue/75804.
coordinator_flake() {
  grep -q 'context deadline exceeded' "$log" &&
    ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"
}

count=0
flakes=0
for pkg in $(go list ./...); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for target in $targets; do
    budget=$FUZZTIME
    while :; do
      echo "fuzz: $pkg $target ($budget)"
      if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" "$pkg" >"$log" 2>&1; then
        break
      fi
      if [[ $budget != *x ]] && coordinator_flake; then
        execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
        budget="$(( ${execs:-0} > 1000 ? ${execs:-0} : 1000 ))x"
        echo "fuzz: $target: bare 'context deadline exceeded' with no failing input (go.dev/issue/75804); again as $budget"
        flakes=$((flakes + 1))
        continue
      fi
      cat "$log"
      echo "fuzz: $pkg $target FAILED (a failing input, if any, is under $(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$target)"
      exit 1
    done
    count=$((count + 1))
  done
done
echo "fuzz: $count targets ran for $FUZZTIME each, no failures ($flakes re-run with a count budget after go.dev/issue/75804)"
