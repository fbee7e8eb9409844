#!/usr/bin/env bash
# stages.sh STAGE...: runs `make STAGE` for each stage in order, stopping at
# the first failure, with a progress line per stage (start and elapsed
# time) and the stage times at the end, also when a stage failed.
#
# Each stage's CPU time (user + system of everything it ran, as bash's
# `times` counts finished children; a PostgreSQL server started in the
# background is not counted) is printed beside its wall time: on a shared
# machine the wall time says how loaded it was, the CPU time what the stage
# costs.
set -uo pipefail
cd "$(dirname "$0")/.."

# children_cpu sets cpu to the CPU time (user + system) of the finished
# children of this shell, in milliseconds. `times` runs in this shell, not
# in a $(...) subshell, which would count only its own children.
timesf=$(mktemp)
trap 'rm -f "$timesf"' EXIT
cpu=0
children_cpu() {
  times >"$timesf" # second line: the children's user and system time, "XmY.YYYs XmY.YYYs"
  cpu=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] } printf "%d\n", s * 1000 }' "$timesf")
}

start=$SECONDS
children_cpu
cpu_start=$cpu
names=()
times_wall=()
times_cpu=()
result=0
for stage in "$@"; do
  echo "== [$(date -u +%H:%M:%S)] $stage ..."
  t0=$SECONDS
  children_cpu
  c0=$cpu
  make --no-print-directory "$stage"
  rc=$?
  children_cpu
  c1=$cpu
  names+=("$stage")
  times_wall+=($((SECONDS - t0)))
  times_cpu+=($(((c1 - c0 + 500) / 1000)))
  if [ "$rc" -ne 0 ]; then
    echo "== $stage FAILED after $((SECONDS - t0)) s"
    result=$rc
    break
  fi
  echo "== $stage ok ($((SECONDS - t0)) s, $((SECONDS - start)) s so far)"
done
echo
echo "== stage times ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go env GOVERSION))"
printf '   %-12s %7s %7s\n' stage wall cpu
for i in "${!names[@]}"; do
  printf '   %-12s %5d s %5d s\n' "${names[$i]}" "${times_wall[$i]}" "${times_cpu[$i]}"
done
children_cpu
printf '   %-12s %5d s %5d s\n' total $((SECONDS - start)) $(((cpu - cpu_start + 500) / 1000))
if [ "$result" -ne 0 ]; then
  echo "== make test FAILED in stage ${names[-1]}"
elif [ -n "${TOTALS:-}" ] && [ -f "$TOTALS" ]; then
  # The closing count of every test run (the skips stage wrote it).
  cat "$TOTALS"
fi
exit "$result"
