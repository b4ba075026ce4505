"""Integer fields as JSON Schema reads them: a JSON number with no fraction is an integer."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator


def whole_number(value: Any) -> Any:
    """1.0 -> 1 (OpenAPI 3.1 and JSON Schema 2020-12 call 1.0 an integer); 1.5 stays refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Strict models refuse floats for `int`; this one takes the whole-number floats the schema allows.
Int = Annotated[int, BeforeValidator(whole_number)]
