#!/usr/bin/env bash
# Runs pytest with the whole process tree's clock moved (libfaketime) to instants of the clinic's day
# (America/Sao_Paulo, UTC-3): the suite must pass at any hour. Usage:
#   scripts/clock_sweep.sh [PYTEST ARGS]      (default: unit, function and demo tests)
#   CLOCK_SWEEP_INSTANTS="2026-12-01 21:40:00" scripts/clock_sweep.sh tests
# Needs Debian's faketime package (apt-get install faketime).
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n1 || true)
if [[ -z "$lib" ]]; then
  echo "libfaketime is not installed: apt-get install faketime" >&2
  exit 2
fi
# UTC instants: 15:20, 18:52, 23:57 and 06:05 in São Paulo, a Sunday 00:04, month end and year end
# 23:58 local, and 21:40 UTC.
default_instants=(
  "2026-11-24 18:20:00" "2026-11-24 21:52:00" "2026-11-25 02:57:00" "2026-11-24 09:05:00"
  "2026-11-29 03:04:00" "2026-12-01 02:58:00" "2027-01-01 02:58:00" "2026-12-01 21:40:00"
)
if [[ -n "${CLOCK_SWEEP_INSTANTS:-}" ]]; then
  IFS=',' read -r -a instants <<<"$CLOCK_SWEEP_INSTANTS"
else
  instants=("${default_instants[@]}")
fi
args=("$@")
if [[ ${#args[@]} -eq 0 ]]; then
  args=(tests/unit tests/functions tests/e2e/test_demo.py)
fi
failed=()
for instant in "${instants[@]}"; do
  # An offset from the real clock (not "@start"), so every process of the stack, whenever it starts,
  # sees the same moved clock.
  offset=$(printf "%+d" $(($(date -u -d "${instant}" +%s) - $(date -u +%s))))
  echo "== clock at ${instant} UTC (FAKETIME=${offset})"
  if ! TZ=UTC FAKETIME="${offset}" LD_PRELOAD="$lib" .venv/bin/python -m pytest -q -p no:cacheprovider "${args[@]}"; then
    failed+=("$instant")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "failed at: ${failed[*]}" >&2
  exit 1
fi
echo "passed at all ${#instants[@]} instants"
