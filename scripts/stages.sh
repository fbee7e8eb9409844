#!/usr/bin/env bash
# stages.sh STAGE...: runs `make STAGE` for each stage in order, stopping at
# the first failure, with a progress line per stage (start and elapsed
# time) and the stage times at the end, also when a stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
names=()
times=()
result=0
for stage in "$@"; do
  echo "== [$(date -u +%H:%M:%S)] $stage ..."
  t0=$SECONDS
  make --no-print-directory "$stage"
  rc=$?
  names+=("$stage")
  times+=($((SECONDS - t0)))
  if [ "$rc" -ne 0 ]; then
    echo "== $stage FAILED after $((SECONDS - t0)) s"
    result=$rc
    break
  fi
  echo "== $stage ok ($((SECONDS - t0)) s, $((SECONDS - start)) s so far)"
done
echo
echo "== stage times ($(nproc) cores, $(go env GOVERSION))"
for i in "${!names[@]}"; do
  printf '   %-12s %5d s\n' "${names[$i]}" "${times[$i]}"
done
printf '   %-12s %5d s\n' total $((SECONDS - start))
if [ "$result" -ne 0 ]; then
  echo "== make test FAILED in stage ${names[-1]}"
elif [ -n "${TOTALS:-}" ] && [ -f "$TOTALS" ]; then
  # The closing count of every test run (the skips stage wrote it).
  cat "$TOTALS"
fi
exit "$result"
