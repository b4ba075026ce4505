"""Specs from a dict or a YAML/JSON file, with dotted-path overrides."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actlab.errors import SpecError

SpecLike = Mapping[str, Any] | str | Path


def load(spec: SpecLike) -> dict[str, Any]:
    """A spec as a dict: given as one, or read from a `.yaml`/`.yml`/`.json` file.

    A file that cannot be read or parsed raises `SpecError` with one line that names the
    file (and the line and column of a syntax error, or the duplicate key), so the CLI can
    print it as it is.
    """
    if isinstance(spec, Mapping):
        return copy.deepcopy(dict(spec))
    path = Path(spec)
    doc = _parse(_read(path), path)
    if not isinstance(doc, dict):
        raise SpecError(f"{path}: a spec is a mapping, not {type(doc).__name__}")
    return doc


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a spec file") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(f"{path}: {exc.strerror or exc}") from None


def _parse(text: str, path: Path) -> Any:
    if path.suffix in (".yaml", ".yml"):
        from actlab import spec_yaml  # pyyaml, only for YAML files

        return spec_yaml.load(text, str(path))
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from None
    except _DuplicateKey as exc:
        raise SpecError(f"{path}: duplicate key {exc.args[0]!r}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply") from None


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a repeated key as the API does (JSON keeps the last one)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def apply(doc: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`doc` with each dotted path (`training.epochs`) set to its value."""
    for path, value in (overrides or {}).items():
        parts = _parts(path, shown=path)
        node = doc
        *parents, leaf = parts
        for depth, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(parents[: depth + 1])
                raise SpecError(f"{path}: {where} is {json.dumps(child)}, not a mapping")
            node = child
        node[leaf] = value
    return doc


def _parts(path: str, *, shown: str) -> list[str]:
    """A dotted path's names; an empty one (`=1`, `.x`, `a..b`) is refused, as the API would
    refuse the key "" with a less helpful message."""
    parts = [part.strip() for part in path.split(".")]
    if not all(parts):
        raise SpecError(f"{shown}: expected a dotted path of names, e.g. training.epochs")
    return parts


def parse_assignment(text: str) -> tuple[str, Any]:
    """`training.epochs=5` -> ("training.epochs", 5); values are read as JSON, else a string."""
    path, sep, raw = text.partition("=")
    if not sep:
        raise SpecError(f"--set {text!r}: expected PATH=VALUE, e.g. training.epochs=5")
    path = ".".join(_parts(path, shown=f"--set {text!r}"))
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return path, value
