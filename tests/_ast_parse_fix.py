"""Keep pytest able to report failures after many Temporal calls.

pytest renders a failing test's traceback with ``ast.parse``. After enough client and
worker traffic in one process, CPython 3.11.7 raises ``SystemError: AST constructor
recursion depth mismatch`` from that parse (the main thread's recursion counter no longer
matches its stack: cpython gh-106905, pytest-dev/pytest#10763), and pytest aborts the whole
session with INTERNALERROR, hiding every later result. A new thread starts with a clean
counter, so the parse is retried there. Only the failure-rendering path changes.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

import _pytest._code.code as _code

_original = _code.getstatementrange_ast  # pyright: ignore[reportPrivateImportUsage]


def _parse_in_fresh_thread(text: str) -> ast.Module:
    result: dict[str, Any] = {}

    def parse() -> None:
        try:
            result["tree"] = ast.parse(text, "source", "exec")
        except BaseException as error:  # reported by the caller
            result["error"] = error

    thread = threading.Thread(target=parse, name="pytest-ast-parse")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["tree"]


def _getstatementrange_ast(lineno: int, source: Any, assertion: bool = False, astnode=None):
    try:
        return _original(lineno, source, assertion, astnode)
    except SystemError:
        if astnode is not None:
            raise
        tree = _parse_in_fresh_thread(str(source))
        return _original(lineno, source, assertion, tree)


_code.getstatementrange_ast = _getstatementrange_ast  # pyright: ignore[reportPrivateImportUsage]
