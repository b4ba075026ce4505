"""Where in a submitted document a validation error is, as the client wrote it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def field_path(loc: tuple[Any, ...], body: Any) -> str:
    """A dotted path into the request as the client wrote it.

    pydantic inserts union tags and branch names into `loc` (`dataset.mnist1d.num_samples`);
    walking the submitted body drops the segments the client never wrote.
    """
    source, *rest = loc if loc else ("body",)
    parts: list[str] = [] if source == "body" else [str(source)]
    node = body if source == "body" else None
    for segment in rest:
        if _contains(node, segment):
            node = node[segment]  # type: ignore[index]
        elif isinstance(node, dict) and (segment in node.values() or "[" in str(segment)):
            continue  # the discriminator's value or a union branch: not in the document
        else:
            node = None
        parts.append(f"[{segment}]" if isinstance(segment, int) else str(segment))
    return ".".join(parts).replace(".[", "[") or "body"


def _contains(node: Any, segment: Any) -> bool:
    if isinstance(node, dict):
        return segment in node
    return isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node)


def field_errors(
    errors: Iterable[Any], body: Any, *, within: str | None = None
) -> list[dict[str, Any]]:
    """pydantic's errors as `{path, message, type}`, each path as the client wrote it.

    `within` prefixes each path (a sweep's `grid[...]`); its errors' `loc` start inside `body`.
    """
    out = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        path = field_path(("body", *loc) if within else loc, body)
        out.append(
            {
                "path": f"{within}.{path}" if within else path,
                "message": str(err.get("msg", "invalid value")).removeprefix("Value error, "),
                "type": err.get("type"),
            }
        )
    return out
