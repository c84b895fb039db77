"""Typed errors raised by every Workspace backend (contract layer, imports nothing).

All errors derive from :class:`WorkspaceError`. Input problems are also ``ValueError`` and missing
records are also ``KeyError``, so callers that only know the builtin exceptions still catch them.
The HTTP service maps each class to a status code and the client maps it back, so the same
exception type surfaces no matter which backend is behind the contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "AuthenticationError",
    "InvalidBatchItemError",
    "InvalidCursorError",
    "InvalidInputError",
    "PayloadTooLargeError",
    "RecordNotFoundError",
    "ServiceError",
    "StorageBusyError",
    "UnknownCollectionError",
    "UnknownProfileError",
    "WorkspaceError",
]


class WorkspaceError(Exception):
    """Base class of every error raised by the workspace package."""

    status_code: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Serialize the error for the HTTP service.

        Returns:
            A JSON-able dict with the error ``type`` (class name) and ``message``.
        """
        return {"error": type(self).__name__, "message": self.message}


class InvalidInputError(WorkspaceError, ValueError):
    """An argument has the wrong type, shape or value.

    Attributes:
        field: The argument at fault when the check knows it (``kind``, ``scope``...), else None.
            ``ingest`` validation sets it, so a batch error can name the field of each record.
    """

    status_code = 400
    field: str | None = None


class UnknownCollectionError(InvalidInputError):
    """A collection name is not one of the allowed collections."""

    def __init__(self, value: object, allowed: Iterable[str]) -> None:
        self.value = value
        self.allowed = tuple(allowed)
        super().__init__(f"unknown collection {value!r}; use one of: {', '.join(self.allowed)}")

    def to_dict(self) -> dict[str, Any]:
        """Serialize the error, including the offending value and the allowed ones.

        Returns:
            A JSON-able dict.
        """
        value = self.value
        if not (value is None or isinstance(value, (str, int, float, bool))):
            value = repr(value)
        return {**super().to_dict(), "value": value, "allowed": list(self.allowed)}


class InvalidCursorError(InvalidInputError):
    """A pagination cursor is malformed or belongs to a different query."""


class UnknownProfileError(InvalidInputError):
    """A context profile name was never registered."""


class PayloadTooLargeError(InvalidInputError):
    """A request body exceeds the service's size limit."""

    status_code = 413


class InvalidBatchItemError(InvalidInputError):
    """Records of an ``ingest_many`` batch are invalid; nothing of the batch was stored (HTTP 422).

    Attributes:
        index: Position in the batch of the first invalid record (0-based).
        field: Its field at fault (``content``, ``collection``, ``kind``...), or None when the
            record itself is not an object.
        errors: The invalid records found, in order, as ``{"index", "field", "error",
            "message"}`` dicts (``error`` is the class name of the single-record error, e.g.
            ``UnknownCollectionError``).
    """

    status_code = 422

    def __init__(self, errors: list[dict[str, Any]], message: str | None = None) -> None:
        if not errors:
            raise ValueError("InvalidBatchItemError needs at least one error")
        self.errors = [dict(err) for err in errors]
        first = self.errors[0]
        self.index = int(first.get("index", 0))
        raw_field = first.get("field")
        self.field = None if raw_field is None else str(raw_field)
        if message is None:
            where = f"record {self.index}" + (f", field {self.field!r}" if self.field else "")
            message = f"invalid batch: {where}: {first.get('message', '')}"
            if len(self.errors) > 1:
                others = ", ".join(str(err.get("index")) for err in self.errors[1:6])
                more = ", ..." if len(self.errors) > 6 else ""
                noun = "record" if len(self.errors) == 2 else "records"
                message += f" (also invalid: {noun} {others}{more})"
            message += "; nothing was stored"
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        """Serialize the error, including the culprit's index and field and every item error.

        Returns:
            A JSON-able dict.
        """
        return {
            **super().to_dict(),
            "index": self.index,
            "field": self.field,
            "errors": self.errors,
        }


class RecordNotFoundError(WorkspaceError, KeyError):
    """No record (or link) with this id exists for the caller's tenant.

    Another tenant's ids deliberately raise this too, so ids cannot be probed across tenants.
    """

    status_code = 404

    def __init__(self, record_id: object, message: str | None = None) -> None:
        self.record_id = record_id
        super().__init__(
            message
            or f"no record with id {record_id!r} in this workspace; check the id and the tenant"
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialize the error, including the id that was not found.

        Returns:
            A JSON-able dict.
        """
        return {**super().to_dict(), "id": str(self.record_id)}


class AuthenticationError(WorkspaceError):
    """The HTTP service rejected the bearer token (missing or unknown)."""

    status_code = 401


class StorageBusyError(WorkspaceError):
    """The database stayed locked by another connection past the busy timeout (HTTP 503).

    Nothing was written; the same call can be retried after ``retry_after`` seconds (the HTTP
    service sends it as the ``Retry-After`` header).
    """

    status_code = 503

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        """Serialize the error, including ``retry_after`` seconds.

        Returns:
            A JSON-able dict.
        """
        return {**super().to_dict(), "retry_after": self.retry_after}


class ServiceError(WorkspaceError):
    """The HTTP service answered with an unexpected status or body."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"workspace service error {status_code}: {message}")
        self.status_code = status_code


_BY_NAME: dict[str, type[WorkspaceError]] = {
    cls.__name__: cls
    for cls in (
        InvalidInputError,
        InvalidCursorError,
        UnknownProfileError,
        PayloadTooLargeError,
        AuthenticationError,
    )
}


def error_from_payload(status_code: int, payload: Any) -> WorkspaceError:
    """Rebuild the typed error that the service serialized with ``to_dict``.

    Args:
        status_code: The HTTP status of the response.
        payload: The decoded JSON body (any shape; unknown shapes become ``ServiceError``).

    Returns:
        The matching ``WorkspaceError`` subclass instance.
    """
    if not isinstance(payload, dict):
        return ServiceError(status_code, str(payload)[:500])
    name = str(payload.get("error", ""))
    message = str(payload.get("message", "")) or f"HTTP {status_code}"
    if name == "RecordNotFoundError" or (status_code == 404 and "id" in payload):
        return RecordNotFoundError(payload.get("id", ""), message)
    if name == "UnknownCollectionError":
        err = UnknownCollectionError(payload.get("value"), payload.get("allowed") or ())
        err.message = message
        err.args = (message,)
        return err
    if name == "InvalidBatchItemError":
        errors = payload.get("errors")
        if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
            return InvalidBatchItemError(errors, message)
        index = payload.get("index")
        return InvalidBatchItemError(
            [
                {
                    "index": index if isinstance(index, int) else 0,
                    "field": payload.get("field"),
                    "error": "InvalidInputError",
                    "message": message,
                }
            ],
            message,
        )
    if name == "StorageBusyError":
        retry_after = payload.get("retry_after")
        if isinstance(retry_after, bool) or not isinstance(retry_after, (int, float)):
            retry_after = 1.0
        return StorageBusyError(message, retry_after=retry_after)
    cls = _BY_NAME.get(name)
    if cls is not None:
        return cls(message)
    if status_code == 413:
        return PayloadTooLargeError(message)
    if status_code == 401:
        return AuthenticationError(message)
    if 400 <= status_code < 500:
        return InvalidInputError(message)
    return ServiceError(status_code, message)
