"""The client under hostile workflow failures (issue 17, client finding).

A chunk failure names its exception's module in the failure details, which sit in
workflow history: anyone who can start or fail a workflow on the namespace writes them.
The client rebuilds the typed error from modules it has already loaded and never imports
one by name (importing runs the module's code). A type it does not have falls back to
the generic typed error, whose message names the original type and module.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from triggerflow_temporal import ChunkFailedError, ExecutionStateError, TriggerFlow
from triggerflow_temporal.client.errors import rebuild_error
from triggerflow_temporal.spec.wire import chunk_failed_error


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """An importable module that records being imported: (its name, the marker file)."""
    name = f"tf_hostile_probe_{uuid.uuid4().hex[:12]}"
    marker = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "class Boom(Exception):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert importlib.util.find_spec(name) is not None  # importable: the test means something
    yield name, marker
    sys.modules.pop(name, None)


def chunk_failure(type_name: str, module: str | None, message: str = "bad") -> BaseException:
    """A workflow failure shaped as the worker reports a chunk's error."""
    details = {"flow": "f", "chunk": "c", "type": type_name, "module": module, "message": message}
    return WorkflowFailureError(cause=chunk_failed_error(details))


def test_a_failure_naming_an_unloaded_module_does_not_import_it(probe):
    name, marker = probe
    error = rebuild_error(chunk_failure("Boom", name))
    assert not marker.exists() and name not in sys.modules
    assert type(error) is ChunkFailedError
    assert error.error_type == "Boom" and error.chunk_name == "c"
    assert f"{name}.Boom" in str(error)  # the message names the original type and module


def test_a_workflow_rejection_naming_an_unloaded_module_does_not_import_it(probe):
    name, marker = probe
    cause = ApplicationError("refused", {"module": name}, type="Boom", non_retryable=True)
    error = rebuild_error(WorkflowFailureError(cause=cause))
    assert not marker.exists() and name not in sys.modules
    assert isinstance(error, ExecutionStateError) and isinstance(error, RuntimeError)
    assert f"{name}.Boom" in str(error)


@pytest.mark.parametrize("module", ["builtins", None])
def test_a_builtin_type_still_rebuilds(module):
    error = rebuild_error(chunk_failure("ValueError", module, "bad refund"))
    assert isinstance(error, ValueError) and isinstance(error, ChunkFailedError)
    assert error.error_type == "ValueError"
    assert str(error) == "Chunk 'c' of flow 'f' failed: ValueError: bad refund"


class CustomRefusal(Exception):
    """An error type of a module the client has loaded (this one)."""


def test_a_type_of_a_loaded_module_still_rebuilds():
    assert CustomRefusal.__module__ in sys.modules
    error = rebuild_error(chunk_failure("CustomRefusal", CustomRefusal.__module__))
    assert isinstance(error, CustomRefusal) and isinstance(error, ChunkFailedError)
    assert str(error) == "Chunk 'c' of flow 'f' failed: CustomRefusal: bad"


def test_a_loaded_module_attribute_that_is_no_exception_is_not_used():
    error = rebuild_error(chunk_failure("system", "os"))
    assert type(error) is ChunkFailedError
    assert "os.system" in str(error)


async def test_an_execution_failure_naming_an_unloaded_module_does_not_import_it(runtime, probe):
    name, marker = probe

    class Boom(Exception):
        pass

    Boom.__module__ = name  # the worker reports this module for the chunk's error

    async def explode(data):
        raise Boom("from a module the client never loaded")

    flow = TriggerFlow(name=f"sec-client-rebuild-{uuid.uuid4().hex[:6]}")
    flow.to(explode)
    async with runtime([flow]):
        with pytest.raises(ChunkFailedError, match=f"{name}.Boom") as info:
            await flow.create_execution().async_start(None)
    assert info.value.error_type == "Boom"
    assert not marker.exists() and name not in sys.modules
