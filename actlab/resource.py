"""What `client.experiments` and `client.sweeps` share: submitting a document, paging a list."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from actlab import specs

if TYPE_CHECKING:
    from actlab.client import Client


class Resource:
    def __init__(self, client: Client) -> None:
        self._c = client

    def _submit(
        self,
        path: str,
        document: specs.SpecLike,
        overrides: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> Any:
        """POST a spec or sweep (dict or YAML/JSON path) with dotted-path `overrides` set."""
        body = specs.apply(specs.load(document), overrides)
        return self._c.post_idempotent(path, body, idempotency_key)

    def _pages(self, path: str, **params: Any) -> Iterator[Any]:
        """Each page of a list, newest first, following `next_cursor` to the last."""
        cursor = None
        while True:
            page = self._c.get(path, **params, cursor=cursor)
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return
