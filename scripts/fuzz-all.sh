#!/usr/bin/env bash
# fuzz-all.sh: runs every FuzzXxx target in the module for $FUZZTIME each
# (default 3s). Targets are found in the test binaries themselves
# (-test.list), so a new one is covered without editing anything.
#
# Speed: one fuzz-instrumented test binary is built per package (go test -c
# -fuzz, as go test -fuzz would build it) instead of one build per target,
# and $FUZZJOBS targets (default: the number of cores) run at once with
# cores/FUZZJOBS fuzz workers each, so the machine stays busy while one
# target starts up or shuts down. Each target still gets $FUZZTIME, its
# seed corpus (testdata/fuzz) and go test's corpus cache
# ($GOCACHE/fuzz/<import path>); a failing input is written to the
# package's testdata/fuzz/FuzzXxx as with go test.
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
export FUZZTIME=${FUZZTIME:-3s}
cores=$(nproc)
jobs=${FUZZJOBS:-$cores}
export FUZZWORKERS=$(( cores / jobs > 0 ? cores / jobs : 1 ))
work=$(mktemp -d "${TMPDIR:-/tmp}/lpsec-fuzz.XXXXXX")
export FUZZWORK=$work
trap 'rm -rf "$work"' EXIT
cache=$(go env GOCACHE)/fuzz
export FUZZCACHE=$cache

# Packages with a fuzz target (a *_test.go file declaring func FuzzXxx),
# or the package directories in $FUZZPKGS (e.g. FUZZPKGS="./token ./auth").
if [ -n "${FUZZPKGS:-}" ]; then
  read -r -a dirs <<<"$FUZZPKGS"
else
  mapfile -t dirs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Z0-9_]' . \
    | grep -v -e '/testdata/' -e '^\./tools/' | xargs -n1 dirname | sort -u)
fi

: >"$work/targets"
for dir in "${dirs[@]}"; do
  pkg=$(go list "$dir")
  bin="$work/$(echo "$pkg" | tr / _).test"
  go test -c -fuzz=. -o "$bin" "$dir"
  (cd "$dir" && "$bin" -test.list '^Fuzz') | grep '^Fuzz' | while read -r target; do
    echo "$dir $pkg $bin $target" >>"$work/targets"
  done
done

run_target() { # dir pkg bin target
  local dir=$1 pkg=$2 bin=$3 target=$4 budget=$FUZZTIME
  local log="$FUZZWORK/$target.$$.log" note=""
  while :; do
    if (cd "$dir" && "$bin" -test.run='^$' -test.fuzz="^${target}\$" -test.fuzztime="$budget" \
          -test.parallel="$FUZZWORKERS" -test.fuzzcachedir="$FUZZCACHE/$pkg") >"$log" 2>&1; then
      local execs
      execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
      echo "fuzz: $pkg $target ($budget): ok, ${execs:-?} execs$note"
      return 0
    fi
    if [[ $budget != *x ]] &&
       grep -q 'context deadline exceeded' "$log" &&
       ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
      local n
      n=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
      budget="$(( ${n:-0} > 1000 ? ${n:-0} : 1000 ))x"
      note=" (re-run as $budget after a bare 'context deadline exceeded', go.dev/issue/75804)"
      continue
    fi
    cat "$log"
    echo "fuzz: $pkg $target FAILED (a failing input, if any, is under $dir/testdata/fuzz/$target)"
    return 255 # stops xargs
  done
}
export -f run_target

count=$(wc -l <"$work/targets")
echo "fuzz: $count targets in ${#dirs[@]} packages, $FUZZTIME each, $jobs at a time with $FUZZWORKERS worker(s) each"
xargs -P "$jobs" -L 1 bash -c 'run_target "$@"' _ <"$work/targets"
echo "fuzz: $count targets ran for $FUZZTIME each, no failures"
