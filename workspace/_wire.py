"""JSON transport of record content: bytes travel as base64 with an explicit content type."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from workspace.errors import InvalidInputError


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


def encode_wire_content(content: Any) -> tuple[str, Any]:
    """Turn content into ``(content_type, JSON value)``; bytes become base64.

    Args:
        content: str, dict/list or bytes.

    Returns:
        The content type and the JSON-able value.
    """
    if isinstance(content, (bytes, bytearray, memoryview)):
        return "bytes", base64.b64encode(bytes(content)).decode("ascii")
    if isinstance(content, str):
        return "text", content
    return "json", content
