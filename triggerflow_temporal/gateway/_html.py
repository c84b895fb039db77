"""Server-rendered HTML for the approver pages (approval links, the inbox), gateway side.

Pure: no I/O. Every value that reaches markup goes through :func:`esc`. Pages are plain
HTML with one small inline style sheet (allowed by a hash in the Content-Security-Policy),
no scripts and nothing fetched from elsewhere, so they work in any browser without
JavaScript and a link scanner that opens a page runs nothing.

:class:`SchemaForm` builds a ``<form>`` from an interrupt's ``response_payload_schema``
(JSON Schema): one control per property, named by the property (strings as text inputs or
textareas, numbers and integers, booleans as a checkbox or a yes/no select, enums as a
select, objects and arrays as JSON), ``required`` and descriptions as help text, and Approve
/ Reject buttons (``name="approved"``, ``value="true"``/``"false"``) when the schema has an
``approved`` boolean. :meth:`SchemaForm.value` converts the submitted strings by the
schema's types (``true``/``on``/``false``, numbers; empty optional fields are left out)
before the runtime's own schema check validates the result.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi.responses import HTMLResponse

DECISION_FIELD = "approved"
"""The boolean property that turns into Approve / Reject buttons."""

DEFAULT_DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "description": "Approve or reject."},
        "comment": {"type": "string", "description": "Optional note for the record."},
    },
    "required": ["approved"],
}
"""The form of an interrupt without a ``response_payload_schema`` (any value is accepted)."""

RESERVED_PREFIX = "__"
"""Hidden controls of the pages (``__csrf``, ``__rid``); schema properties never start so."""

SCALAR_FIELD = "value"
"""The one control of a schema that is not an object with properties."""

_TRUE = frozenset({"true", "on", "1", "yes"})
_FALSE = frozenset({"false", "off", "0", "no"})
_INTEGER = re.compile(r"^[+-]?\d{1,300}$")
_SHORT_STRING = 200  # a string with a maxLength up to this is a one-line input
_MAX_PRE = 20_000

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1f2328;background:#f6f8fa}
header{background:#24292f;color:#fff;padding:.7rem 1.2rem;display:flex;gap:1rem;
align-items:center;flex-wrap:wrap}
header a{color:#fff}
header .who{margin-left:auto;font-size:.9rem;opacity:.9}
header form{display:inline;margin:0}
main{max-width:60rem;margin:1.2rem auto;padding:0 1rem}
h1{font-size:1.35rem;margin:.2rem 0 1rem}
h2{font-size:1.1rem;margin:1.4rem 0 .6rem}
h3{font-size:1rem;margin:0 0 .5rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:1rem 1.2rem;
margin-bottom:1rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #d0d7de;
vertical-align:top}
th{background:#f6f8fa;font-weight:600;font-size:.85rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}
dt{font-weight:600;color:#57606a}
dd{margin:0;overflow-wrap:anywhere}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.6rem;
overflow:auto;max-height:24rem;margin:.3rem 0;font-size:.85rem}
code{font-size:.9em}
time{white-space:nowrap}
.muted{color:#57606a;font-size:.9rem}
.error{background:#ffebe9;border:1px solid #ff8182;border-radius:6px;padding:.7rem 1rem;
margin-bottom:1rem}
.ok{background:#dafbe1;border:1px solid #4ac26b;border-radius:6px;padding:.7rem 1rem;
margin-bottom:1rem}
.field{margin-bottom:.9rem}
.field label{display:block;font-weight:600;margin-bottom:.2rem}
.field .help{color:#57606a;font-size:.85rem;margin-top:.15rem}
.req{color:#cf222e}
input[type=text],input[type=number],input[type=email],input[type=url],input[type=date],
input[type=password],select,textarea{width:100%;padding:.45rem;border:1px solid #d0d7de;
border-radius:6px;font:inherit}
textarea{min-height:5rem}
.buttons{display:flex;gap:.6rem;margin-top:1rem}
button{font:inherit;padding:.5rem 1.1rem;border-radius:6px;border:1px solid #d0d7de;
background:#f6f8fa;cursor:pointer}
button.approve{background:#1f883d;border-color:#1a7f37;color:#fff}
button.reject{background:#cf222e;border-color:#a40e26;color:#fff}
button.primary{background:#0969da;border-color:#0550ae;color:#fff}
header button{padding:.2rem .6rem;font-size:.85rem}
"""
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML content and quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


# --------------------------------------------------------------------------- pages
def page(title: str, body: str, *, header: str = "") -> str:
    """A whole HTML document: ``title``, the header bar extras and ``body`` (markup)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)} · TriggerFlow</title><style>{CSS}</style></head>"
        f"<body><header><strong>TriggerFlow approvals</strong>{header}</header>"
        f"<main>{body}</main></body></html>"
    )


def html_response(
    markup: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """``markup`` as ``text/html`` with the pages' security headers."""
    return HTMLResponse(markup, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def message_page(
    title: str, message: str, *, status: int, header: str = "", more: str = ""
) -> HTMLResponse:
    """A page that says one thing (errors, outcomes): ``message`` is text, ``more`` markup."""
    kind = "ok" if status < 400 else "error"
    body = (
        f"<h1>{esc(title)}</h1><div class='{kind}' role='{'status' if kind == 'ok' else 'alert'}'>"
        f"{esc(message)}</div>{more}"
    )
    return html_response(page(title, body, header=header), status)


def json_block(value: Any, *, limit: int = _MAX_PRE) -> str:
    """``value`` as indented JSON in a ``<pre>`` (cut at ``limit`` characters)."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[:limit] + "\n… (cut)"
    return f"<pre>{esc(text)}</pre>"


def summary(value: Any, limit: int = 120) -> str:
    """A one-line text summary of a payload (``key: value, ...``), at most ``limit`` chars."""
    if isinstance(value, Mapping):
        parts = [f"{key}: {_short(item)}" for key, item in value.items()]
        text = ", ".join(parts)
    else:
        text = _short(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return repr(value)


def epoch(value: Any) -> float | None:
    """An epoch-seconds number or an RFC 3339 string as epoch seconds (None otherwise)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def duration(seconds: float) -> str:
    """``seconds`` as a short human duration: ``45 s``, ``12 min``, ``3 h``, ``2 d``."""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def moment(
    value: Any, *, now: float | None = None, empty: str = "none", compact: bool = False
) -> str:
    """A ``<time>`` element: the UTC time and how far from now (``in 3 h``, ``5 min ago``).

    ``compact`` shows only how far (the time is its tooltip), for tables.
    """
    at = epoch(value)
    if at is None:
        return f"<span class='muted'>{esc(empty)}</span>"
    now = time.time() if now is None else now
    stamp = datetime.fromtimestamp(at, tz=timezone.utc)
    relative = f"in {duration(at - now)}" if at > now else f"{duration(now - at)} ago"
    iso = stamp.isoformat(timespec="seconds").replace("+00:00", "Z")
    if compact:
        return (
            f"<time datetime='{esc(iso)}' title='{esc(stamp.strftime('%Y-%m-%d %H:%M UTC'))}'>"
            f"{esc(relative)}</time>"
        )
    return (
        f"<time datetime='{esc(iso)}'>{esc(stamp.strftime('%Y-%m-%d %H:%M UTC'))}</time> "
        f"<span class='muted'>({esc(relative)})</span>"
    )


def hidden(fields: Mapping[str, str]) -> str:
    """Hidden ``<input>`` controls."""
    return "".join(
        f"<input type='hidden' name='{esc(name)}' value='{esc(value)}'>"
        for name, value in fields.items()
    )


# ---------------------------------------------------------------------------- forms
@dataclass(frozen=True)
class FormField:
    """One control of a :class:`SchemaForm`.

    Attributes:
        name: The control name (the schema's property name).
        kind: ``string``, ``text`` (textarea), ``integer``, ``number``, ``boolean``,
            ``enum`` or ``json``.
        schema: The property's schema.
        required: Whether the schema requires it.
    """

    name: str
    kind: str
    schema: Mapping[str, Any]
    required: bool

    @property
    def label(self) -> str:
        """The schema's ``title``, else the property name."""
        title = self.schema.get("title")
        return title if isinstance(title, str) and title else self.name

    @property
    def description(self) -> str | None:
        """The schema's ``description`` (shown as help text)."""
        text = self.schema.get("description")
        return text if isinstance(text, str) and text else None


class _Omit:
    """A control that contributes nothing to the value (empty and optional)."""


_OMIT = _Omit()


def _json_type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def _kind(schema: Mapping[str, Any]) -> str:
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return "enum"
    kind = _json_type(schema)
    if kind in ("boolean", "integer", "number"):
        return kind
    if kind in ("object", "array"):
        return "json"
    limit = schema.get("maxLength")
    if isinstance(limit, int) and limit <= _SHORT_STRING or schema.get("format"):
        return "string"
    return "text"


class SchemaForm:
    """A form for one JSON Schema (an interrupt's ``response_payload_schema``).

    Args:
        schema: The schema; None or empty gives :data:`DEFAULT_DECISION_SCHEMA`.
    """

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        schema = schema if isinstance(schema, Mapping) and schema else DEFAULT_DECISION_SCHEMA
        self.schema = schema
        properties = schema.get("properties")
        is_object = _json_type(schema) in (None, "object")
        self.scalar = not (isinstance(properties, Mapping) and properties and is_object)
        if self.scalar:
            self.fields: tuple[FormField, ...] = (
                FormField(SCALAR_FIELD, _kind(schema), schema, True),
            )
            self.decision: FormField | None = None
            return
        assert isinstance(properties, Mapping)
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        fields = []
        decision = None
        for name, sub in properties.items():
            if not isinstance(name, str) or name.startswith(RESERVED_PREFIX):
                continue
            sub = sub if isinstance(sub, Mapping) else {}
            field = FormField(name, _kind(sub), sub, name in (required or []))
            if name == DECISION_FIELD and field.kind == "boolean":
                decision = field
            else:
                fields.append(field)
        self.fields = tuple(fields)
        self.decision = decision

    # ------------------------------------------------------------------ conversion
    def value(self, form: Mapping[str, Sequence[str]]) -> Any:
        """The resume value from submitted controls (name -> values), typed by the schema.

        Strings that do not convert are kept as they are, so the schema check names them.
        """
        if self.scalar:
            converted = _convert(self.fields[0], form.get(SCALAR_FIELD, ()))
            return None if converted is _OMIT else converted
        value: dict[str, Any] = {}
        for field in (*self.fields, *((self.decision,) if self.decision else ())):
            converted = _convert(field, form.get(field.name, ()), decision=field is self.decision)
            if converted is not _OMIT:
                value[field.name] = converted
        return value

    # ------------------------------------------------------------------- markup
    def render(
        self,
        *,
        submitted: Mapping[str, Sequence[str]] | None = None,
        error: str | None = None,
        hidden_fields: Mapping[str, str] | None = None,
        submit_label: str = "Submit",
    ) -> str:
        """The ``<form method="post">`` (posts to the page's own URL)."""
        submitted = submitted or {}
        parts = ["<form method='post' class='card' accept-charset='utf-8'>"]
        if error:
            parts.append(
                "<div class='error' role='alert'><strong>This answer was not accepted.</strong> "
                f"{esc(error)}</div>"
            )
        parts.append(hidden(hidden_fields or {}))
        for field in self.fields:
            parts.append(_control(field, submitted.get(field.name)))
        if self.decision is not None:
            help_text = self.decision.description
            if help_text:
                parts.append(f"<p class='help muted'>{esc(help_text)}</p>")
            parts.append(
                "<div class='buttons'>"
                f"<button type='submit' name='{DECISION_FIELD}' value='true' class='approve'>"
                "Approve</button>"
                f"<button type='submit' name='{DECISION_FIELD}' value='false' class='reject'>"
                "Reject</button></div>"
            )
        else:
            parts.append(
                "<div class='buttons'><button type='submit' class='primary'>"
                f"{esc(submit_label)}</button></div>"
            )
        parts.append("</form>")
        return "".join(parts)


def _convert(field: FormField, raw: Sequence[str], *, decision: bool = False) -> Any:
    text = raw[-1] if raw else None
    if field.kind == "boolean":
        if text is None:  # an unchecked checkbox sends nothing
            return False if field.required and not decision else _OMIT
        lowered = text.strip().lower()
        if lowered == "":
            return _OMIT
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        return text
    if text is None:
        return _OMIT
    if field.kind in ("string", "text"):
        if text == "" and not field.required:
            return _OMIT
        return text.replace("\r\n", "\n")
    stripped = text.strip()
    if stripped == "":
        return _OMIT
    if field.kind == "integer":
        return int(stripped) if _INTEGER.match(stripped) else text
    if field.kind == "number":
        if _INTEGER.match(stripped):
            return int(stripped)
        try:
            number = float(stripped)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if field.kind == "enum":
        for option in field.schema.get("enum") or []:
            if _option_value(option) == text:
                return option
        return text
    try:  # json
        return json.loads(stripped)
    except ValueError:
        return text


def _option_value(option: Any) -> str:
    return option if isinstance(option, str) else json.dumps(option, ensure_ascii=False)


def _control(field: FormField, raw: Sequence[str] | None) -> str:
    ident = f"f-{re.sub(r'[^A-Za-z0-9_-]', '_', field.name)}"
    current = raw[-1] if raw else None
    if current is None and "default" in field.schema:
        default = field.schema["default"]
        current = default if isinstance(default, str) else _option_value(default)
    name = esc(field.name)
    required = " required" if field.required else ""
    star = " <span class='req' title='required'>*</span>" if field.required else ""
    label = f"<label for='{ident}'>{esc(field.label)}{star}</label>"
    help_text = f"<div class='help'>{esc(field.description)}</div>" if field.description else ""
    schema = field.schema
    if field.kind == "boolean" and field.required:
        checked = " checked" if (current or "").strip().lower() in _TRUE else ""
        control = (
            f"<label><input type='checkbox' id='{ident}' name='{name}' value='true'{checked}> "
            f"{esc(field.label)}</label>"
        )
        return f"<div class='field'>{control}{help_text}</div>"
    if field.kind in ("boolean", "enum"):
        options: list[tuple[str, str]]
        if field.kind == "boolean":
            options = [("true", "Yes"), ("false", "No")]
        else:
            options = [(_option_value(o), _option_value(o)) for o in schema.get("enum") or []]
        blank = "" if field.required and current is not None else "<option value=''>—</option>"
        items = "".join(
            f"<option value='{esc(value)}'{' selected' if value == current else ''}>"
            f"{esc(text)}</option>"
            for value, text in options
        )
        control = f"<select id='{ident}' name='{name}'{required}>{blank}{items}</select>"
    elif field.kind in ("integer", "number"):
        attributes = " step='1'" if field.kind == "integer" else " step='any'"
        for key, attribute in (("minimum", "min"), ("maximum", "max")):
            bound = schema.get(key)
            if isinstance(bound, (int, float)) and not isinstance(bound, bool):
                attributes += f" {attribute}='{esc(bound)}'"
        control = (
            f"<input type='number' id='{ident}' name='{name}' value='{esc(current or '')}'"
            f"{attributes}{required}>"
        )
    elif field.kind == "string":
        input_type = {"email": "email", "uri": "url", "date": "date"}.get(
            str(schema.get("format")), "text"
        )
        control = (
            f"<input type='{input_type}' id='{ident}' name='{name}' "
            f"value='{esc(current or '')}'{_lengths(schema)}{required}>"
        )
    else:  # text, json
        placeholder = " placeholder='JSON'" if field.kind == "json" else ""
        lengths = _lengths(schema) if field.kind == "text" else ""
        control = (
            f"<textarea id='{ident}' name='{name}'{placeholder}{lengths}{required}>"
            f"{esc(current or '')}</textarea>"
        )
    return f"<div class='field'>{label}{control}{help_text}</div>"


def _lengths(schema: Mapping[str, Any]) -> str:
    out = ""
    for key, attribute in (("minLength", "minlength"), ("maxLength", "maxlength")):
        bound = schema.get(key)
        if isinstance(bound, int) and not isinstance(bound, bool) and bound >= 0:
            out += f" {attribute}='{bound}'"
    return out
