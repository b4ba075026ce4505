"""Specs from a dict or a YAML/JSON file, with dotted-path overrides."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SpecLike = Mapping[str, Any] | str | Path


def load(spec: SpecLike) -> dict[str, Any]:
    """A spec as a dict: given as one, or read from a `.yaml`/`.yml`/`.json` file."""
    if isinstance(spec, Mapping):
        return copy.deepcopy(dict(spec))
    path = Path(spec)
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml  # only for YAML files

        doc = yaml.safe_load(text)
    else:
        doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a spec is a mapping, not {type(doc).__name__}")
    return doc


def apply(doc: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`doc` with each dotted path (`training.epochs`) set to its value."""
    for path, value in (overrides or {}).items():
        node = doc
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return doc


def parse_assignment(text: str) -> tuple[str, Any]:
    """`training.epochs=5` -> ("training.epochs", 5); values are read as JSON, else a string."""
    path, sep, raw = text.partition("=")
    if not sep or not path:
        raise ValueError(f"{text!r}: expected PATH=VALUE, e.g. training.epochs=5")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return path.strip(), value
