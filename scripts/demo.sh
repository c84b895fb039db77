#!/usr/bin/env bash
# The README's first command. Installs into .venv (first run only), starts the embedded
# stack (`triggerflow-temporal dev`: Temporal dev server + UI on SQLite under .triggerflow/,
# the Workspace service, a worker), then runs the approval story with the CLI, each step a
# separate process: start a refund approval, list it as waiting, approve it, show it
# completed; then a second approval resumed through the gateway with its API key, and a third
# left waiting in the gateway's inbox. Then it stops the stack, or keeps it running with
# --keep-running (Ctrl-C stops).
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0
for arg in "$@"; do
  case "$arg" in
    --keep-running) KEEP=1 ;;
    -h | --help)
      echo "usage: bash scripts/demo.sh [--keep-running]"
      exit 0
      ;;
    *)
      echo "unknown option: $arg (usage: bash scripts/demo.sh [--keep-running])" >&2
      exit 2
      ;;
  esac
done

if [ ! -x .venv/bin/triggerflow-temporal ]; then
  echo "Installing triggerflow-temporal into .venv (first run only) ..."
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
fi
TF=.venv/bin/triggerflow-temporal
export PATH="$PWD/.venv/bin:$PATH"

mkdir -p .triggerflow
LOG=.triggerflow/dev.log
: >"$LOG"
"$TF" dev >"$LOG" 2>&1 &
DEV=$!

stop_dev() {
  kill -0 "$DEV" 2>/dev/null || return 0
  kill -TERM "$DEV" 2>/dev/null || true
  for _ in $(seq 1 150); do # up to 30 s for a clean stop
    kill -0 "$DEV" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$DEV" 2>/dev/null; then
    echo "the dev stack did not stop in 30 s; killing it" >&2
    kill -KILL "$DEV" 2>/dev/null || true
  fi
  wait "$DEV" 2>/dev/null || true
}
trap stop_dev EXIT
trap 'echo; echo "stopping ..."; exit 130' INT TERM

# Show the stack's progress until it is ready (bounded).
shown=0
show_log() {
  local total
  total=$(wc -l <"$LOG")
  if [ "$total" -gt "$shown" ]; then
    sed -n "$((shown + 1)),${total}p" "$LOG" | grep -v -E "^Temporal (CLI|Server|Persistence|UI|Metrics)" || true
    shown=$total
  fi
}
deadline=$((SECONDS + 180))
until grep -q "^Ctrl-C stops everything" "$LOG"; do
  show_log
  if ! kill -0 "$DEV" 2>/dev/null; then
    echo "The dev stack stopped while starting; its output (.triggerflow/dev.log):" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "The dev stack did not become ready within 180 s; see .triggerflow/dev.log" >&2
    exit 1
  fi
  sleep 0.2
done
show_log

ID="refund-r-1001-$(date +%H%M%S)"
shown_command() { # the command as one would type it (JSON in single quotes)
  local text="triggerflow-temporal" arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=-]+$ ]]; then text+=" $arg"; else text+=" '$arg'"; fi
  done
  printf '\n$ %s\n' "$text"
}
step() {
  shown_command "$@"
  "$TF" "$@"
}

echo
echo "=== The approval story: each command below is its own process ==="
step start refund_approval --id "$ID" --input '{"refund_id": "r-1001", "amount": 42.5, "reason": "broken"}'

# Visibility is eventually consistent: give the listing a moment (bounded).
listing=""
for _ in $(seq 1 25); do
  listing=$("$TF" list --waiting)
  grep -q "^$ID " <<<"$listing" && break
  sleep 0.2
done
shown_command list --waiting
echo "$listing"

step continue "$ID" approve-R-1001 --value '{"approved": true, "by": "demo"}'
step show "$ID"

echo
echo "=== The same approval through the gateway (what an external system or approver uses) ==="
GW=http://127.0.0.1:8090
KEY_FILE=.triggerflow/gateway-key
ID2="refund-r-1002-$(date +%H%M%S)"
step start refund_approval --id "$ID2" --tenant default --input '{"refund_id": "r-1002", "amount": 18, "reason": "late"}'
gateway_call() { # METHOD PATH [JSON]: the curl one would type, then the answer
  printf '\n$ curl -X %s %s%s -H "Authorization: Bearer $(cat %s)"%s\n' "$1" "$GW" "$2" "$KEY_FILE" "${3:+ -d '$3'}"
  .venv/bin/python - "$1" "$GW$2" "$KEY_FILE" "${3:-}" <<'PY'
import json, sys, httpx
method, url, key_file, body = sys.argv[1:5]
key = open(key_file).read().strip()
answer = httpx.request(method, url, headers={"Authorization": f"Bearer {key}"},
                       json=json.loads(body) if body else None, timeout=30)
print(answer.status_code, json.dumps(answer.json(), indent=2)[:1200])
PY
}
gateway_call GET "/v1/executions/$ID2"
gateway_call POST "/v1/executions/$ID2/interrupts/approve-R-1002/continue" '{"value": {"approved": true, "by": "gateway"}}'
gateway_call GET "/v1/executions/$ID2/audit"

echo
echo "=== A third approval waits in the approver's inbox (the gateway's web page) ==="
ID3="refund-r-1003-$(date +%H%M%S)"
step start refund_approval --id "$ID3" --tenant default --input '{"refund_id": "r-1003", "amount": 7.5, "reason": "duplicate"}'

echo
echo "See it in the Temporal UI: http://localhost:8233/namespaces/default/workflows/$ID"
echo "  (workflow type refund_approval; one activity per chunk; the graph in its details)"
echo "Open the inbox: $GW/inbox (log in with the key in $KEY_FILE)"
echo "  approve-R-1003 of $ID3 waits there; a fresh key is written each time the stack starts"

if [ "$KEEP" = 1 ]; then
  echo
  echo "The stack keeps running (output in .triggerflow/dev.log). Try the commands above"
  echo "with your own ids in another terminal (. .venv/bin/activate first). Ctrl-C stops it."
  wait "$DEV" || true
else
  echo
  echo "Stopping the stack (run with --keep-running to keep it) ..."
  stop_dev
  tail -n 1 "$LOG"
fi
