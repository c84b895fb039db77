"""The HTTP contract, defined once for both sides: routes, request and response bodies.

HTTP layer. The service declares its endpoints with these models (FastAPI validates requests
against them and publishes them in the OpenAPI schema); the client builds every request with the
same models, so a change to a body changes both sides. Records, links, pages and context packs
travel as the ``to_dict()`` form of :mod:`workspace.types`; record content travels as JSON with
an explicit content type, bytes as base64.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from workspace.errors import InvalidBatchItemError, InvalidInputError
from workspace.types import Profile
from workspace.validation import DEFAULT_PAGE_SIZE, MAX_INGEST_BATCH

# -- routes -------------------------------------------------------------------------------------

HEALTH = "/healthz"
RECORDS = "/v1/records"
RECORDS_BATCH = "/v1/records/batch"
RECORD = "/v1/records/{record_id}"
RECORD_DATA = "/v1/records/{record_id}/data"
RECORD_READ = "/v1/records/{record_id}/read"
SEARCH = "/v1/search"
PRUNE = "/v1/prune"
LINKS = "/v1/links"
CHECKPOINTS = "/v1/checkpoints"
CHECKPOINT_HISTORY = "/v1/checkpoints/history"
CHECKPOINT_LATEST = "/v1/checkpoints/latest"
CONTEXT = "/v1/context"
PROFILES = "/v1/profiles"

# -- content ------------------------------------------------------------------------------------

ContentTypeName = Literal["text", "json", "bytes"]

_CONTENT_TYPES = (str, bytes, bytearray, memoryview, dict, list, tuple)


def encode_wire_content(content: object) -> tuple[ContentTypeName, Any]:
    """Turn content into ``(content_type, JSON value)``; bytes become base64.

    Args:
        content: str, dict/list or bytes.

    Returns:
        The content type and the JSON-able value.

    Raises:
        InvalidInputError: For any other type.
    """
    if not isinstance(content, _CONTENT_TYPES):
        raise InvalidInputError(
            f"content must be str, bytes, dict or list, got {type(content).__name__}"
        )
    if isinstance(content, (bytes, bytearray, memoryview)):
        return "bytes", base64.b64encode(bytes(content)).decode("ascii")
    if isinstance(content, str):
        return "text", content
    return "json", content


def decode_wire_content(content: Any, content_type: str | None) -> Any:
    """Turn JSON-transported content back into str, dict/list or bytes.

    Args:
        content: The JSON value from the request.
        content_type: ``text``, ``json``, ``bytes`` or None (infer: str -> text, object/array ->
            json).

    Returns:
        The content.

    Raises:
        InvalidInputError: When the value does not fit the content type or base64 is invalid.
    """
    if content_type == "bytes":
        if not isinstance(content, str):
            raise InvalidInputError("bytes content must be a base64 string")
        try:
            return base64.b64decode(content.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise InvalidInputError("bytes content is not valid base64") from exc
    if content_type == "text" and not isinstance(content, str):
        raise InvalidInputError("text content must be a JSON string")
    if content_type == "json" and not isinstance(content, (dict, list)):
        raise InvalidInputError("json content must be a JSON object or array")
    return content


# -- validation errors --------------------------------------------------------------------------


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Describe pydantic validation errors the same way on both sides.

    Args:
        errors: ``ValidationError.errors()`` (or FastAPI's ``RequestValidationError.errors()``).

    Returns:
        The message (``invalid request: <loc>: <msg>; ...``, at most five) and the details.
    """
    details = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
        for err in errors
    ]
    summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
    return f"invalid request: {summary}", details


def batch_validation_error(
    errors: Sequence[Mapping[str, Any]],
) -> InvalidBatchItemError | None:
    """Describe validation errors of batch records as the batch error, on both sides.

    Args:
        errors: Pydantic errors whose ``loc`` starts with the record's index in the batch
            (``(3, "kind")``: record 3, field ``kind``).

    Returns:
        The error naming each invalid record (its first problem), or None when an error is not
        about one record (the batch itself is malformed).
    """
    by_index: dict[int, dict[str, Any]] = {}
    for err in errors:
        loc = list(err.get("loc", ()))
        if not loc or isinstance(loc[0], bool) or not isinstance(loc[0], int):
            return None
        index = loc[0]
        if index in by_index:
            continue
        path = [str(p) for p in loc[1:]]
        by_index[index] = {
            "index": index,
            "field": path[0] if path else None,
            "error": "ValidationError",
            # The field is named apart; a deeper path (scope.x) is kept in the message.
            "message": (f"{'.'.join(path)}: " if len(path) > 1 else "") + str(err.get("msg", "")),
        }
    if not by_index:
        return None
    return InvalidBatchItemError([by_index[index] for index in sorted(by_index)])


@contextmanager
def checked_request() -> Iterator[None]:
    """Turn a request body the models refuse into InvalidInputError (client side).

    The service would refuse the same body with 422, which the client raises as
    InvalidInputError too; checking first spares the round trip.

    Yields:
        Nothing.

    Raises:
        InvalidInputError: Describing the refused fields.
    """
    try:
        yield
    except ValidationError as exc:
        raise InvalidInputError(describe_errors(exc.errors())[0]) from None


# -- request bodies and query parameters --------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestBody(_Body):
    """Body of ``POST /v1/records``; bytes content is base64 with ``content_type="bytes"``."""

    content: Any = Field(description="str (text), object/array (json) or base64 str (bytes)")
    content_type: ContentTypeName | None = Field(
        None, description="text, json or bytes; inferred from content when omitted"
    )
    collection: Any = Field(description="observations, artifacts, decisions or checkpoints")
    kind: StrictStr
    summary: StrictStr | None = None
    scope: dict[str, Any] | None = None
    source: StrictStr | None = None
    meta: dict[str, Any] | None = None


class IngestBatchBody(_Body):
    """Body of ``POST /v1/records/batch``: records stored all or nothing, in one transaction."""

    records: list[IngestBody] = Field(
        description=(
            f"At most {MAX_INGEST_BATCH} records, each the body of POST /v1/records. One "
            "invalid record refuses the batch with 422 InvalidBatchItemError (index, field); "
            "nothing is stored."
        )
    )


class ReadQuery(BaseModel):
    """Query of ``GET /v1/records/{id}/read``."""

    offset: int = Field(0, ge=0)
    limit: int = Field(65536, ge=1)


class SearchBody(_Body):
    """Body of ``POST /v1/search``."""

    query: StrictStr | None = None
    filters: dict[str, Any] | None = None
    scope: dict[str, Any] | None = None
    limit: StrictInt = 20
    cursor: StrictStr | None = None


class PruneBody(_Body):
    """Body of ``POST /v1/prune``."""

    scope: dict[str, Any] | None = None
    older_than_seconds: float | None = Field(None, ge=0)
    keep_last: StrictInt | None = None
    collection: Any = None


class LinkBody(_Body):
    """Body of ``POST /v1/links``."""

    source: StrictStr
    target: StrictStr
    relation: StrictStr
    meta: dict[str, Any] | None = None


class LinksQuery(BaseModel):
    """Query of ``GET /v1/links`` (``limit`` 1-1000, default 100)."""

    ref: str | None = None
    source: str | None = None
    target: str | None = None
    relation: str | None = None
    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None


class CheckpointBody(_Body):
    """Body of ``POST /v1/checkpoints``."""

    run_id: StrictStr
    state: Any
    content_type: ContentTypeName | None = None
    step_id: StrictStr | None = None
    scope: dict[str, Any] | None = None


class HistoryBody(_Body):
    """Body of ``POST /v1/checkpoints/history`` (``limit`` 1-1000, default 100)."""

    run_id: StrictStr
    step_id: StrictStr | None = None
    limit: StrictInt | None = None
    cursor: StrictStr | None = None
    scope: dict[str, Any] | None = None


class LatestBody(_Body):
    """Body of ``POST /v1/checkpoints/latest``."""

    run_id: StrictStr
    scope: dict[str, Any] | None = None


_DEFAULT_PROFILE = Profile()


class ProfileBody(_Body):
    """An inline context profile: the fields of :class:`~workspace.types.Profile`."""

    collection_weights: dict[str, float] = Field(
        default_factory=lambda: dict(_DEFAULT_PROFILE.collection_weights)
    )
    kind_weights: dict[str, float] = Field(default_factory=dict)
    relevance_weight: float = _DEFAULT_PROFILE.relevance_weight
    recency_weight: float = _DEFAULT_PROFILE.recency_weight
    recency_half_life_s: float = _DEFAULT_PROFILE.recency_half_life_s
    min_relevance: float = _DEFAULT_PROFILE.min_relevance
    use_summaries: bool = _DEFAULT_PROFILE.use_summaries
    candidate_limit: StrictInt = _DEFAULT_PROFILE.candidate_limit
    description: str = _DEFAULT_PROFILE.description

    def to_profile(self) -> Profile:
        """The profile these fields describe.

        Returns:
            The profile.
        """
        return Profile(**self.model_dump())


class ContextBody(_Body):
    """Body of ``POST /v1/context``."""

    goal: StrictStr
    scope: dict[str, Any] | None = None
    budget: dict[str, StrictInt] | StrictInt | None = None
    profile: StrictStr | ProfileBody = "default"
    required: list[StrictStr] | None = None


# -- response bodies (records, links, pages and packs are their types' to_dict()) ---------------


class RecordData(BaseModel):
    """Response of ``GET /v1/records/{id}/data``."""

    id: str
    content_type: ContentTypeName
    content: Any


class IngestBatchResult(BaseModel):
    """Response of ``POST /v1/records/batch``: the refs (``to_dict()``), in the order sent."""

    records: list[dict[str, Any]]


class PruneResult(BaseModel):
    """Response of ``POST /v1/prune``."""

    deleted: int


class CheckpointState(BaseModel):
    """A checkpoint with its state (``ref`` is a record ref's ``to_dict()``)."""

    ref: dict[str, Any]
    content_type: ContentTypeName
    state: Any


class LatestCheckpoint(BaseModel):
    """Response of ``POST /v1/checkpoints/latest``: the newest checkpoint, or null."""

    checkpoint: CheckpointState | None
