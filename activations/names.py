"""The one registry mechanism: activations, noise laws and schedule kinds (here), datasets
and models (core.spec.registry) are each a `Registry` of their entries.

One way to register (`add`, which refuses a name or alias already taken unless told to
replace it), one lookup (`get`: a name or an alias, folded when the registry folds case and
'-'/'_'), and one error for a name that is not there (`UnknownNameError`, which lists the
valid names).

`all_or_nothing()` undoes every registration made inside it, in every registry, when the
block raises: a plugin that registers units and then fails at import leaves nothing behind
(otherwise its half-registered units would pass validation and be listed as built in).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")

# Every registry alive, so that all_or_nothing() can restore each without a list to keep.
_REGISTRIES: weakref.WeakSet[Registry[Any]] = weakref.WeakSet()


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """Registrations made in the block stay only if it ends normally: on any exception
    (SystemExit and KeyboardInterrupt included) every registry is put back as it was."""
    saved = [(registry, registry.snapshot()) for registry in list(_REGISTRIES)]
    try:
        yield
    except BaseException:
        for registry, state in saved:
            registry.restore(state)
        raise


class Registry(Generic[T]):
    """Entries of one kind by name, with aliases; `what` names the kind in errors."""

    def __init__(self, what: str, *, fold: bool = False, list_aliases: bool = False) -> None:
        self.what = what
        self._fold = fold
        # What the unknown-name error lists: the names sorted, or every spelling (each name
        # followed by its aliases) in registration order.
        self._list_aliases = list_aliases
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}  # alias -> name
        self._own_aliases: dict[str, tuple[str, ...]] = {}  # name -> its aliases
        _REGISTRIES.add(self)

    def snapshot(self) -> tuple[dict[str, T], dict[str, str], dict[str, tuple[str, ...]]]:
        """What `restore` needs to put the registry back as it is now."""
        return dict(self._entries), dict(self._aliases), dict(self._own_aliases)

    def restore(
        self, state: tuple[dict[str, T], dict[str, str], dict[str, tuple[str, ...]]]
    ) -> None:
        """Put back what `snapshot` saw (registration order included)."""
        entries, aliases, own = state
        self._entries, self._aliases, self._own_aliases = dict(entries), dict(aliases), dict(own)

    def key(self, spelling: str) -> str:
        """How a spelling is matched: as written, or ("Leaky-ReLU") as "leaky_relu"."""
        return spelling.strip().lower().replace("-", "_") if self._fold else spelling

    def add(self, name: str, entry: T, *, aliases: Iterable[str] = (), replace: bool = False) -> T:
        """Register `entry` under `name` and `aliases`; a spelling already taken is refused
        (ValueError) unless `replace`, which first removes the entry now under `name`."""
        key, alias_keys = self.key(name), tuple(self.key(a) for a in aliases)
        if replace:
            self.remove(key)
        for spelling in (key, *alias_keys):
            if spelling in self:
                raise ValueError(f"{self.what} {spelling!r} is already registered")
        self._entries[key] = entry
        self._own_aliases[key] = alias_keys
        self._aliases.update(dict.fromkeys(alias_keys, key))
        return entry

    def remove(self, name: str) -> None:
        """Drop `name` and its aliases (nothing if it is not registered)."""
        key = self.key(name)
        if self._entries.pop(key, None) is not None:
            for alias in self._own_aliases.pop(key, ()):
                self._aliases.pop(alias, None)

    def canonical(self, spelling: str) -> str:
        """The registered name that `spelling` (a name or an alias) stands for."""
        key = self.key(spelling)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            valid = list(self.spellings()) if self._list_aliases else sorted(self._entries)
            raise UnknownNameError(spelling, valid, what=self.what)
        return key

    def get(self, spelling: str) -> T:
        """The entry for a name or an alias; UnknownNameError (listing the names) if none."""
        return self._entries[self.canonical(spelling)]

    def __contains__(self, spelling: object) -> bool:
        if not isinstance(spelling, str):
            return False
        key = self.key(spelling)
        return key in self._entries or key in self._aliases

    def names(self) -> list[str]:
        """The registered names (no aliases), in registration order."""
        return list(self._entries)

    def entries(self) -> list[T]:
        """The entries, in registration order."""
        return list(self._entries.values())

    def spellings(self) -> tuple[str, ...]:
        """Every name, each followed by its aliases, in registration order."""
        return tuple(s for name in self._entries for s in (name, *self._own_aliases[name]))
