"""The HTTP contract does not move by accident: the served OpenAPI schema equals, byte for
byte, the snapshot in tests/service/openapi/data/openapi.json.

A change to the contract is deliberate: write the new snapshot with
`python -m tests.service.openapi.test_openapi_snapshot` and review its diff with the change. Plugins
are kept out (they add units to the schema by design); the snapshot is of the built-ins.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "data" / "openapi.json"


def served_schema() -> str:
    from core.settings import Settings
    from service.app import create_app

    schema = create_app(Settings(database_url="sqlite://", auth_enabled=False)).openapi()
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def test_the_openapi_schema_equals_the_snapshot() -> None:
    served, stored = served_schema(), SNAPSHOT.read_text(encoding="utf-8")
    if served != stored:
        import difflib

        diff = difflib.unified_diff(
            stored.splitlines(), served.splitlines(), "snapshot", "served", lineterm="", n=2
        )
        raise AssertionError(
            "the OpenAPI schema changed; if that is meant, rewrite the snapshot with "
            "`python -m tests.service.openapi.test_openapi_snapshot`:\n"
            + "\n".join(list(diff)[:80])
        )


if __name__ == "__main__":
    SNAPSHOT.write_text(served_schema(), encoding="utf-8")
    print(f"wrote {SNAPSHOT}", file=sys.stderr)
