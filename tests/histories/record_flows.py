"""Record the histories that tests/reliability/test_determinism.py replays.

    python tests/histories/record_flows.py              # every flow without a history yet
    python tests/histories/record_flows.py approval ... # (re-)record the named entries

Histories go to tests/histories/flows-v<RUNTIME_VERSION>/ (the runtime version new
executions start with); tests/histories/flows/ keeps those of versions 1-2, which must go
on replaying for executions started before the upgrade.
    TRIGGERFLOW_TEMPORAL_ADDRESS=host:7233 python tests/histories/record_flows.py

Entries (one per flow in tests/ and the examples) are listed in
tests/reliability/_catalogue.py; each is written to tests/histories/flows/<name>.json.

Re-record only on purpose: a history that no longer replays means executions running on
the old interpreter would break on upgrade. Keep the old file under another name when the
change is meant to be versioned rather than replacing it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.reliability import _catalogue as catalogue  # noqa: E402
from triggerflow_temporal import TriggerFlowPlugin  # noqa: E402
from triggerflow_temporal.testing import start_local_runtime  # noqa: E402


async def main(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        found = catalogue.entries(Path(tmp))
        known = {entry.name for entry in found}
        unknown = set(names) - known
        if unknown:
            raise SystemExit(f"unknown entries {sorted(unknown)}; known: {sorted(known)}")
        conformance = catalogue.history_workflow_types(recursive=False)
        wanted = [
            entry
            for entry in found
            if entry.name in names
            or (
                not names
                and entry.flow.name not in conformance
                and not (catalogue.CURRENT_HISTORIES_DIR / f"{entry.name}.json").exists()
            )
        ]
        flows = catalogue.served_flows(found)
        plugin = TriggerFlowPlugin(
            flows,
            catalogue.RESOURCES,
            workspace=str(Path(tmp) / "workspace.db"),
            event_handlers=catalogue.EVENT_HANDLERS,
            intervention_policies=catalogue.INTERVENTION_POLICIES,
        )
        catalogue.CURRENT_HISTORIES_DIR.mkdir(exist_ok=True)
        async with start_local_runtime(flows, plugin=plugin) as client:
            for entry in wanted:
                workflow_id = f"history-{entry.name}"
                await catalogue.run_entry(entry, client, workflow_id)
                history = await client.get_workflow_handle(workflow_id).fetch_history()
                path = catalogue.CURRENT_HISTORIES_DIR / f"{entry.name}.json"
                text = json.dumps(json.loads(history.to_json()), indent=1, sort_keys=True)
                path.write_text(text + "\n", encoding="utf-8")
                print(f"wrote {path.relative_to(ROOT)} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
