#!/usr/bin/env bash
# The README's first command: install into .venv (once) and run the embedded stack:
# Temporal dev server with UI (SQLite under .triggerflow/), a worker, the Workspace on
# SQLite, and the example refund approval flow end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/triggerflow-temporal ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
fi
exec .venv/bin/triggerflow-temporal demo "$@"
