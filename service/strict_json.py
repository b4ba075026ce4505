"""Input that JSON parsers disagree on is a 422 naming where it is, before any endpoint runs.

Python's json module accepts `NaN` and `Infinity`, lets the last of two equal keys win,
and passes lone surrogates (`"\\udfff"`) that no database can encode; a syntax error names
a character offset. Here each of these is a 422 with the field's path (or the line and
column), and a NUL in a query parameter is one naming the parameter, on every database.

Nesting is bounded too (MAX_DEPTH levels of arrays and objects): the json module recurses
once per level, so a body of 2,000 nested arrays raised RecursionError out of this
middleware (a 500 and a reset connection). The depth is counted before parsing, so no body
makes anything here recurse deeper than the bound. An integer longer than Python converts
(4300 digits) is a 422 naming its field, not a ValueError raised past the error handlers.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl

from service import problems
from service.errors import InvalidSpec

JSON_METHODS = frozenset({"POST", "PUT", "PATCH"})

# Real bodies nest a handful of levels (a sweep: body, base_spec, activation, params, a
# list value); 64 leaves room for any of them and stays far below Python's recursion limit
# (1000), also for what reads the body after this check (pydantic, the spec's NUL check).
MAX_DEPTH = 64

# A string (escapes skipped; unterminated ones run to the end, so scanning stays linear) or
# one bracket. Brackets inside strings are matched as part of the string, never counted.
_NESTING_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as written: its pairs in order, duplicates kept."""


class _NonFinite:
    def __init__(self, text: str) -> None:
        self.text = text


class _TooLong:
    """An integer with more digits than Python converts (sys.get_int_max_str_digits(), 4300
    by default): int() raises ValueError, which json.loads passes on as it is."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


def _integer(text: str) -> int | _TooLong:
    try:
        return int(text)
    except ValueError:
        return _TooLong(text)


def problem_in(body: bytes) -> tuple[str, str] | None:
    """(path, message) of the first thing in `body` that is not strict JSON, else None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "body", f"not UTF-8 (byte {exc.start})"
    if too_deep(text):
        return "body", f"nested deeper than {MAX_DEPTH} levels of arrays and objects"
    try:
        doc = json.loads(
            text, object_pairs_hook=_Pairs, parse_constant=_NonFinite, parse_int=_integer
        )
    except json.JSONDecodeError as exc:
        return "body", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    return _walk(doc, "")


def too_deep(text: str) -> bool:
    """Whether arrays and objects in `text` nest deeper than MAX_DEPTH, read without parsing
    (and without recursion), so that json.loads is only ever given bounded nesting."""
    depth = 0
    for match in _NESTING_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif token in "]}":
            depth -= 1
    return False


def _walk(node: Any, path: str) -> tuple[str, str] | None:
    where = path or "body"
    if isinstance(node, _NonFinite):
        return where, f"{node.text} is not a JSON number; use a finite value"
    if isinstance(node, _TooLong):
        return where, f"an integer of {node.digits} digits is too long to read"
    if isinstance(node, float) and not math.isfinite(node):
        return where, "number out of range"
    if isinstance(node, str):
        return _string_problem(node, where)
    if isinstance(node, list) and not isinstance(node, _Pairs):
        for index, item in enumerate(node):
            found = _walk(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, value in node:
            child = f"{path}.{key}" if path else key
            bad_key = _string_problem(key, child)
            if bad_key:
                return bad_key
            if key in seen:
                return child, "duplicate key"
            seen.add(key)
            found = _walk(value, child)
            if found:
                return found
    return None


def _string_problem(text: str, where: str) -> tuple[str, str] | None:
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return where, "lone surrogate (\\ud800-\\udfff) in a string: not valid Unicode"
    if "\x00" in text:
        return where, "NUL character not allowed"
    return None


def query_problem(query_string: bytes) -> tuple[str, str] | None:
    """(query.<name>, message) for a NUL or a lone surrogate in a query parameter."""
    text = query_string.decode("latin-1")
    for key, value in parse_qsl(text, keep_blank_values=True, errors="surrogateescape"):
        found = _string_problem(key, f"query.{key}") or _string_problem(value, f"query.{key}")
        if found:
            return found
    return None


def _is_json(scope: dict[str, Any]) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.decode("latin-1").split(";")[0].strip().lower()
            return media == "application/json" or media.endswith("+json")
    return False


class StrictJson:
    """ASGI middleware: 422 for non-strict JSON bodies and NUL in query parameters."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = query_problem(scope.get("query_string", b""))
        if found is None and scope["method"] in JSON_METHODS and _is_json(scope):
            body, receive = await _buffer(receive)
            found = problem_in(body) if body else None
        if found is not None:
            await problems.send(_invalid(*found), scope, send)
            return
        await self.app(scope, receive, send)


async def _buffer(receive: Any) -> tuple[bytes, Any]:
    """The whole body, and a `receive` that hands it to the app again."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _invalid(path: str, message: str) -> InvalidSpec:
    errors = [{"path": path, "message": message, "type": "strict_json"}]
    return InvalidSpec(f"{path}: {message}", errors=errors)
