#!/usr/bin/env bash
# Run one test N times in a row with a CPU burner on one core; print pass/fail per run.
#   bash bench/repeat_under_load.sh 20 "tests/test_foreach_history_bound.py::test_large_for_each_spans_runs_with_bounded_history"
# Issue 12 item 3 (a replay NondeterminismError seen once under load) is checked this way.
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:?how many runs}
TEST=${2:?which test}
PY="${PYTHON:-.venv/bin/python}"
python3 -c "while 1: pass" &
BURNER=$!
trap 'kill $BURNER 2>/dev/null' EXIT
passed=0
for i in $(seq 1 "$N"); do
  started=$(date +%s)
  if "$PY" -m pytest -q -p no:randomly "$TEST" > "/tmp/repeat_under_load_$i.log" 2>&1; then
    passed=$((passed + 1)); verdict=pass
  else
    verdict="FAIL (/tmp/repeat_under_load_$i.log)"
  fi
  echo "run $i: $verdict in $(($(date +%s) - started)) s, load $(cut -d' ' -f1 /proc/loadavg)"
done
echo "$passed of $N passed"
[ "$passed" -eq "$N" ]
