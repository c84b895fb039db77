"""A catalogue of bad input: each gives a typed error naming the culprit and the fix, and
leaves everything else intact (the execution is queryable, other executions run).

Covered elsewhere, not repeated here: lambda / ``__main__`` handlers, bad chunk options and
flow configs with unregistered handlers (tests/test_definition.py); a chunk returning a
non-JSON object (tests/test_runtime.py); unknown interrupt ids, response-schema violations
and conflicting resume ids (tests/test_pause_resume.py); hostile strings, ids and
oversized bodies against every Workspace backend and the HTTP service
(tests/workspace/test_ws_hostile.py, test_ws_service.py). Snapshot input is in
test_snapshot_input.py.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from tests.flows import moved_a
from triggerflow_temporal import ChunkOutputError, FlowDefinitionError, TriggerFlow
from triggerflow_temporal.cli import main as cli_main
from triggerflow_temporal.testing import force_replay

from . import bad_flows as bad
from ._support import bounded, expect_raises, free_port
from .flows import approval

MB = bad.MB
# Seconds; a wedged execution fails the test instead of hanging it. Without a workflow cache
# (TRIGGERFLOW_FORCE_REPLAY=1) every workflow task replays the whole history, and the join of
# 300 items of 8 KiB takes about 45 s instead of 5 s.
PAYLOAD_TIMEOUT = 90 if force_replay() else 15


async def assert_intact(client_flow: TriggerFlow, failed: Any, status: str = "failed") -> None:
    """The failed execution is queryable and a good execution still runs on the worker."""
    assert await bounded(failed.async_get_status(), 10, "status query") == status
    check = client_flow.create_execution(auto_close=False)
    await bounded(check.async_start("fine"), PAYLOAD_TIMEOUT, "the call")
    assert await check.async_close() == {"good": "fine"}


GOOD = bad.good_flow()


# ------------------------------------------------------------- client-side values
@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("emit value", lambda e: e.async_emit("X", object())),
        ("continue value", lambda e: e.async_continue_with("approve", {"approved": object()})),
        ("state value", lambda e: e.async_set_state("k", {1, 2})),
        ("emit value", lambda e: e.async_emit_nowait("X", b"\x00bytes")),
    ],
)
async def test_non_json_values_from_the_client_are_rejected_before_sending(runtime, what, call):
    async with runtime([approval]):
        execution = approval.create_execution(auto_close=False)
        await execution.async_start({"ticket": "T"})
        await expect_raises(call(execution), TypeError, f"The {what} must be JSON-ready.*Workspace")
        await execution.async_continue_with("approve", {"approved": True})
        assert await execution.async_close() == {"decisions": [{"approved": True}]}


async def test_non_json_start_value_creates_nothing(runtime):
    async with runtime([approval]) as client:
        execution = approval.create_execution(auto_close=False)
        start = execution.async_start({"when": object()})
        await expect_raises(start, TypeError, "start value must be JSON-ready")
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{execution.id}'")]
        assert runs == []


# -------------------------------------------------------------- chunk-side values
@pytest.mark.parametrize("handler", bad.NON_JSON_WRITERS)
async def test_non_json_chunk_writes_fail_fast_naming_the_chunk(runtime, handler):
    flow = bad.non_json_flow(handler)
    async with runtime([flow, GOOD]):
        bad.CALLS.clear()
        execution = flow.create_execution(auto_close=False)
        await expect_raises(
            execution.async_start(None), ChunkOutputError, f"Chunk '{handler.__name__}'.*JSON-ready"
        )
        assert bad.CALLS == {handler.__name__: 1}  # not retried
        assert await execution.async_get_pending_interrupts() == {}
        await assert_intact(GOOD, execution)


# ---------------------------------------------------------------- payload limits
@pytest.mark.parametrize("handler", bad.OVERSIZED)
@pytest.mark.timeout(90)
async def test_chunk_data_over_the_payload_limit_fails_fast_pointing_to_the_workspace(
    runtime, handler
):
    flow = bad.oversized_flow(handler)
    async with runtime([flow, GOOD]):
        bad.CALLS.clear()
        execution = flow.create_execution(auto_close=False)
        error = await expect_raises(
            execution.async_start(2.5), ChunkOutputError, seconds=PAYLOAD_TIMEOUT
        )
        message = str(error)
        assert handler.__name__ in message and "workspace" in message.lower(), message
        assert bad.CALLS == {handler.__name__: 1}  # a size problem does not heal on retry
        await assert_intact(GOOD, execution)


@pytest.mark.timeout(90)
async def test_state_growing_past_the_payload_limit_fails_instead_of_wedging(runtime):
    # Every chunk receives the whole state: three 0.7 MB writes make the fourth chunk's
    # input larger than Temporal's 2 MB limit although no single write is.
    flow = bad.growing_state_flow()
    async with runtime([flow, GOOD]):
        bad.CALLS.clear()
        execution = flow.create_execution(auto_close=False)
        error = await expect_raises(
            execution.async_start(0.7), ChunkOutputError, seconds=PAYLOAD_TIMEOUT
        )
        assert "workspace" in str(error).lower(), str(error)
        assert "after_growth" not in bad.CALLS
        await assert_intact(GOOD, execution)


@pytest.mark.timeout(90)
async def test_a_join_gathering_more_than_fits_fails_instead_of_wedging(runtime):
    # 300 items of 8 KiB: each output is fine, the collected list (2.4 MiB) is not. The
    # workflow assembles it, so the workflow checks it before scheduling the next chunk.
    flow = bad.big_join_flow()
    async with runtime([flow, GOOD]):
        bad.CALLS.clear()
        execution = flow.create_execution(auto_close=False)
        error = await expect_raises(
            execution.async_start([8] * 300), ChunkOutputError, seconds=PAYLOAD_TIMEOUT
        )
        message = str(error)
        assert "keep_all" in message and "workspace" in message.lower(), message
        assert "keep_all" not in bad.CALLS
        await assert_intact(GOOD, execution)


async def test_data_under_the_limit_still_flows(runtime):
    flow = bad.under_limit_flow()
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await bounded(execution.async_start(0.4), PAYLOAD_TIMEOUT, "the call")
        snapshot = await execution.async_close()
    assert len(snapshot["big"]) == int(0.4 * MB)
    assert snapshot["good"] == "x" * int(0.4 * MB)


@pytest.mark.timeout(60)
async def test_start_value_over_the_payload_limit_is_rejected_by_the_client(runtime):
    async with runtime([GOOD]) as client:
        execution = GOOD.create_execution(auto_close=False)
        error = await expect_raises(
            execution.async_start("s" * (3 * MB)), (TypeError, ValueError), seconds=PAYLOAD_TIMEOUT
        )
        assert "workspace" in str(error).lower(), str(error)
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{execution.id}'")]
        assert runs == []


# -------------------------------------------------------------- unknown names
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.reliability.flows:no_such_flow", "has no attribute 'no_such_flow'"),
        ("tests.reliability.no_such_module:flow", "Cannot import module"),
        ("tests.reliability.flows:CHAIN_LENGTH", "is a int, not a TriggerFlow"),
        ("no-colon-here", r"'no-colon-here'.*(pkg|package)\.module:"),
    ],
)
def test_cli_worker_with_an_unknown_flow_exits_with_a_clear_message(capsys, path, message):
    code = cli_main(["worker", path, "--address", "127.0.0.1:1"])
    assert code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.timeout(90)
async def test_chunk_unknown_to_the_worker_fails_naming_it(runtime):
    # A client with a newer definition starts an execution on a worker that does not have
    # the new chunk's handler.
    old, new = bad.rolling_flows()
    async with runtime([old]) as client:
        queue = client.config()["plugins"][0].task_queue
        execution = new.create_execution(client=client, auto_close=False, task_queue=queue)
        await expect_raises(
            execution.async_start("x"),
            Exception,
            r"audit.*not registered|not registered.*audit",
            seconds=PAYLOAD_TIMEOUT,
        )
        assert await execution.async_get_status() == "failed"


# ------------------------------------------------------------ corrupted blueprints
def _config() -> dict[str, Any]:
    flow = TriggerFlow(name="rel-config")
    flow.to(moved_a.first).if_condition(moved_a.is_big).to(moved_a.second).end_condition()
    return flow.get_flow_config()


def _load(config: Any) -> TriggerFlow:
    flow = TriggerFlow(name="loaded")
    flow.register_chunk_handler(moved_a.first)
    flow.register_chunk_handler(moved_a.second)
    flow.register_condition_handler(moved_a.is_big)
    flow.load_flow_config(config)
    flow.compile()
    return flow


def _corrupt(change: Any) -> dict[str, Any]:
    config = copy.deepcopy(_config())
    change(config)
    return config


@pytest.mark.parametrize(
    ("config", "culprit"),
    [
        (_corrupt(lambda c: c["operators"][0].update(kind="teleport")), "teleport"),
        (_corrupt(lambda c: c["operators"][0].update(listen_signals="START")), "listen_signals"),
        (
            _corrupt(lambda c: c["operators"][1].update(id=c["operators"][0]["id"])),
            "duplicate",
        ),
        (_corrupt(lambda c: c.update(version="trigger_flow/v9")), "trigger_flow/v9"),
        (_corrupt(lambda c: c.pop("operators")), "operators"),
        (["not", "a", "dict"], "must be a dict"),
    ],
    ids=["unknown-kind", "bad-listen-signals", "duplicate-ids", "version", "no-ops", "list"],
)
def test_corrupted_flow_config_is_a_definition_error(config, culprit):
    with pytest.raises(FlowDefinitionError, match=culprit):
        _load(config)
    assert _load(_config()).blueprint_hash  # the intact config still loads


@pytest.mark.parametrize(
    ("loader", "text"),
    [("load_json_flow", "{not json"), ("load_yaml_flow", ": : :\n- [")],
)
def test_unparsable_flow_text_is_a_definition_error(loader, text):
    with pytest.raises(FlowDefinitionError):
        getattr(TriggerFlow(name="text"), loader)(text)


# ------------------------------------------------------ interrupt payload schemas
@pytest.mark.parametrize(
    ("handler", "culprit"),
    [
        (bad.pauses_against_own_schema, "request_payload_schema"),
        (bad.pauses_with_invalid_schema, "response_payload_schema"),
    ],
)
async def test_pause_violating_its_own_schema_fails_the_chunk(runtime, handler, culprit):
    flow = bad.schema_flow(handler)
    async with runtime([flow, GOOD]):
        bad.CALLS.clear()
        execution = flow.create_execution(auto_close=False)
        await expect_raises(
            execution.async_start(None), ValueError, f"{handler.__name__}.*{culprit}"
        )
        assert await execution.async_get_pending_interrupts() == {}
        assert bad.CALLS == {handler.__name__: 1}
        await assert_intact(GOOD, execution)


# ------------------------------------------------- Workspace through data.workspace
@pytest.fixture
def workspace_service(tmp_path) -> Iterator[tuple[str, str]]:
    """The Workspace HTTP service (256 KiB body limit) on a free port: (url, token)."""
    from workspace.http.service import create_app

    token = secrets.token_urlsafe(12)
    app = create_app(
        database_url=str(tmp_path / "ws.db"), tokens={token: "t1"}, max_body_bytes=256 * 1024
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", token
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.parametrize(
    ("payload", "error_name"),
    [
        ({"content": "z" * (512 * 1024)}, "PayloadTooLargeError"),
        ({"content": "ok", "summary": "nul\x00byte"}, "InvalidInputError"),
    ],
    ids=["oversized-body", "nul-in-summary"],
)
async def test_bad_workspace_requests_from_a_chunk_fail_typed_and_leave_it_intact(
    runtime, workspace_service, payload, error_name
):
    from workspace import WorkspaceClient, errors

    url, token = workspace_service
    flow = bad.workspace_flow(error_name)
    async with WorkspaceClient(url, token) as direct:
        kept = await direct.ingest("kept record", "artifacts", "note")
        async with runtime([flow], workspace=WorkspaceClient(url, token)):
            bad.CALLS.clear()
            execution = flow.create_execution(auto_close=False)
            error = await expect_raises(execution.async_start(payload), getattr(errors, error_name))
            assert isinstance(error, ValueError)
            assert "ingest_to_workspace" in str(error)
            assert bad.CALLS == {"ingest_to_workspace": 1}  # invalid input is not retried
            assert await execution.async_get_status() == "failed"
            again = flow.create_execution(auto_close=False)
            await again.async_start({"content": "a fine report"})
            snapshot = await again.async_close()
        assert (await direct.get_data(kept)) == "kept record"
        assert (await direct.get_data(snapshot["ref"])) == "a fine report"
        listed = {r.id for r in (await direct.search(limit=10)).items}
        assert listed == {kept.id, snapshot["ref"]}
