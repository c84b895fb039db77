#!/bin/sh
# Create the namespace and register the TriggerFlow search attributes (idempotent).
# The names and types are SEARCH_ATTRIBUTES in triggerflow_temporal/_devserver.py;
# `triggerflow-temporal list --waiting` queries them.
set -eu
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"

for attempt in $(seq 1 60); do
  temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1 && break
  echo "waiting for Temporal at $ADDRESS ($attempt/60)"
  sleep 2
done

temporal operator namespace describe --namespace "$NAMESPACE" --address "$ADDRESS" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$NAMESPACE" --retention 72h --address "$ADDRESS"

register() {
  if ! out=$(temporal operator search-attribute create --namespace "$NAMESPACE" \
      --address "$ADDRESS" --name "$1" --type "$2" 2>&1); then
    echo "$out" | grep -qi "already" || { echo "$out"; exit 1; }
  fi
  echo "search attribute $1 ($2) registered"
}
register TriggerFlowStatus Keyword
register TriggerFlowName Keyword
register TriggerFlowBlueprint Keyword
register TriggerFlowTenant Keyword
register TriggerFlowPendingInterruptTypes KeywordList
register TriggerFlowAssignees KeywordList
register TriggerFlowCandidateGroups KeywordList
