"""Noise-scale schedules: small stateless objects with ``value(t)``, like timm's schedulers.

Each kind is one registration (`Kind`): description, parameters, shape, needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ParamError
from .names import Registry
from .params import Param, validate

_COMMON = (
    Param("start", "float", 1.0, description="value after warmup"),
    Param("end", "float", 0.0, description="final value, reached at total (a floor for decays)"),
    Param("total", "int", None, 1, None, description="horizon in steps or epochs"),
    Param("warmup", "int", 0, 0, None, description="linear ramp from 0 to start first"),
)


@dataclass(frozen=True)
class Kind:
    """One schedule kind: its catalogue text, its own parameters, its shape after warmup,
    and when it needs `total`; `check` refuses combinations a range cannot express."""

    name: str
    description: str
    shape: Callable[[Mapping[str, Any], float], float]
    params: tuple[Param, ...] = ()
    needs_total: Callable[[Mapping[str, Any]], bool] = lambda p: False
    check: Callable[[Mapping[str, Any]], None] = lambda p: None


_KINDS: Registry[Kind] = Registry("schedule")


def register(kind: Kind) -> Kind:
    """Add a schedule kind; refuses a name already taken."""
    return _KINDS.add(kind.name, kind)


def names() -> list[str]:
    """Sorted schedule kinds."""
    return sorted(_KINDS.names())


def _kind(name: str) -> Kind:
    return _KINDS.get(name)


def param_names(kind: str) -> frozenset[str]:
    """The parameter names ``kind`` takes; UnknownNameError if unknown."""
    return frozenset(p.name for p in _COMMON + _kind(kind).params)


def extra_params(kind: str) -> tuple[Param, ...]:
    """The parameters ``kind`` takes beyond start, end, total and warmup."""
    return _kind(kind).params


def catalogue() -> list[dict[str, Any]]:
    """JSON-serialisable description of every schedule kind."""
    return [
        {
            "name": k.name,
            "description": k.description,
            "params": [p.as_dict() for p in _COMMON + k.params],
        }
        for k in map(_kind, names())
    ]


def validate_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised params for ``kind`` (defaults filled) or ParamError naming the param."""
    entry = _kind(kind)
    clean = validate(kind, _COMMON + entry.params, params)
    total, warmup = clean["total"], clean["warmup"]
    if entry.needs_total(clean) and total is None:
        raise ParamError("total", f"{kind}: param 'total' is required")
    if total is not None and kind != "constant" and total <= warmup:
        raise ParamError("total", f"{kind}: param 'total' must exceed 'warmup' ({warmup})")
    entry.check(clean)
    return clean


class Schedule:
    """value(t) for t in steps or epochs; remembers only the last t asked, for resume."""

    def __init__(self, kind: str, **params: Any) -> None:
        self.kind = kind
        self.params = validate_params(kind, params)
        self.last_t: float | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Schedule({self.kind!r}, {args})"

    def advance_to(self, t: float) -> float:
        """Move to ``t`` (recorded as the last position, which a checkpoint keeps) and return
        the scheduled value there; ``at`` reads a value without moving."""
        self.last_t = float(t)
        return self.at(t)

    def at(self, t: float) -> float:
        """The scheduled value at ``t`` without recording it."""
        p = self.params
        start, end, total, warmup = p["start"], p["end"], p["total"], p["warmup"]
        if t < warmup:
            return start * max(t, 0.0) / warmup
        if self.kind == "constant":
            return start
        if total is not None and t >= total:
            return end
        return _kind(self.kind).shape(p, t)

    def state_dict(self) -> dict[str, Any]:
        """Kind, params and last position: everything needed to resume."""
        return {"kind": self.kind, "params": dict(self.params), "last_t": self.last_t}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from ``state_dict()``; the kind must match."""
        if state["kind"] != self.kind:
            raise ValueError(f"state is for schedule {state['kind']!r}, not {self.kind!r}")
        self.params = validate_params(self.kind, state["params"])
        last = state.get("last_t")
        self.last_t = None if last is None else float(last)

    def preview(self, n_points: int, total: int | None = None) -> list[tuple[float, float]]:
        """``n_points`` evenly spaced (t, value) pairs over [0, horizon]; records nothing."""
        horizon = total or self.params["total"] or max(self.params["warmup"], 1) * 10
        if n_points < 2:
            return [(0.0, self.at(0.0))][:n_points]
        ts = [horizon * i / (n_points - 1) for i in range(n_points)]
        return [(t, self.at(t)) for t in ts]


def _fraction(p: Mapping[str, Any], t: float) -> float:
    return (t - p["warmup"]) / (p["total"] - p["warmup"])


def _bounded(p: Mapping[str, Any], v: float) -> float:
    # Open-ended shapes stop at end, from whichever side they approach it.
    return max(v, p["end"]) if p["end"] <= p["start"] else min(v, p["end"])


def _linear(p: Mapping[str, Any], t: float) -> float:
    return p["start"] + (p["end"] - p["start"]) * _fraction(p, t)


def _cosine(p: Mapping[str, Any], t: float) -> float:
    return p["end"] + (p["start"] - p["end"]) * (1 + math.cos(math.pi * _fraction(p, t))) / 2


def _scaled_power(start: float, base: float, exponent: float) -> float:
    """start * base**exponent, saturating at ±inf where the power overflows a float."""
    if start == 0:
        return 0.0
    try:
        return start * base**exponent
    except OverflowError:
        return math.copysign(math.inf, start)


def _exponential(p: Mapping[str, Any], t: float) -> float:
    if p["rate"] is not None:
        return _bounded(p, _scaled_power(p["start"], p["rate"], t - p["warmup"]))
    return p["start"] * (p["end"] / p["start"]) ** _fraction(p, t)


def _step(p: Mapping[str, Any], t: float) -> float:
    size = p["step_size"] or max(1, (p["total"] - p["warmup"]) // 4)
    return _bounded(p, _scaled_power(p["start"], p["gamma"], (t - p["warmup"]) // size))


def _inverse_sqrt(p: Mapping[str, Any], t: float) -> float:
    w = max(p["warmup"], 1)
    return _bounded(p, p["start"] * math.sqrt(w / max(t, w)))


def _geometric_needs_positive_ends(p: Mapping[str, Any]) -> None:
    if p["rate"] is None and (p["end"] <= 0 or p["start"] <= 0):
        raise ParamError("end", "exponential: params 'start' and 'end' must be > 0 (or give rate)")


register(Kind("constant", "start (end and total are ignored).", lambda p, t: p["start"]))
register(
    Kind(
        "linear",
        "start + (end - start) * f, f = (t - warmup) / (total - warmup).",
        _linear,
        needs_total=lambda p: True,
    )
)
register(
    Kind(
        "cosine",
        "end + (start - end) * (1 + cos(pi f)) / 2.",
        _cosine,
        needs_total=lambda p: True,
    )
)
register(
    Kind(
        "exponential",
        "start * (end / start)^f (end > 0); or start * rate^(t - warmup) with rate.",
        _exponential,
        (Param("rate", "float", None, 0.0, None, min_open=True, description="factor per unit t"),),
        needs_total=lambda p: p["rate"] is None,
        check=_geometric_needs_positive_ends,
    )
)
register(
    Kind(
        "step",
        "start * gamma^floor((t - warmup) / step_size), never past end; step_size"
        " defaults to (total - warmup) / 4: three drops over the run.",
        _step,
        (
            Param(
                "step_size",
                "int",
                None,
                1,
                None,
                description="units of t between drops (default: a quarter of total - warmup)",
            ),
            Param("gamma", "float", 0.5, 0.0, None, description="factor per drop"),
        ),
        needs_total=lambda p: p["step_size"] is None,
    )
)
register(
    Kind(
        "inverse_sqrt",
        "start * sqrt(max(warmup, 1) / max(t, warmup, 1)), never past end.",
        _inverse_sqrt,
    )
)


def create(kind: str, **params: Any) -> Schedule:
    """Build a schedule of ``kind``; unknown kinds raise UnknownNameError."""
    return Schedule(kind, **params)
