"""Experiment use cases: the router parses, these act (flush only; the request commits)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.artifacts import weights_path
from core.dispatch import send_runs
from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments as repo
from core.store import metrics as metrics_repo
from core.store import series_read
from core.store.db import after_commit
from core.store.metrics import Row
from core.store.models import TERMINAL, Experiment, Status
from service import limits, owners
from service.access import get_visible
from service.auth import Principal
from service.errors import Conflict, InvalidSpec, NotFound
from service.experiments.downsample import downsample


def create(
    *,
    session: Session,
    settings: Settings,
    principal: Principal,
    spec: ExperimentSpec,
    fork: dict[str, Any] | None = None,
) -> Experiment:
    """Insert a queued experiment (a fork, with its `fork` record); it is sent to the
    workers after the commit.

    The cheap checks come first (the queue cap, the key's priority), then the one that
    builds the model: an owner over a limit learns it at once, whatever else is wrong."""
    limits.refuse_if_queue_full(session, principal.owner_id, 1, settings)
    limits.check_priority(spec.priority, owners.max_priority(session, principal))
    size = limits.check_spec(spec, settings)
    limits.check_queue(session, principal.owner_id, 1, settings)
    experiment = repo.create(
        session, spec=spec, owner_id=principal.owner_id, memory_bytes=size.total_bytes, fork=fork
    )
    repo.mark_enqueued(session, experiment.id)
    enqueue_after_commit(session, settings, [experiment.id], priority=spec.priority)
    return experiment


def enqueue_after_commit(
    session: Session, settings: Settings, ids: list[str], *, priority: int = 0
) -> None:
    """Send the wake-ups once committed; work above the default priority may preempt."""

    def send() -> None:
        send_runs(settings, ids)  # a broker that is down: sent once it answers again
        if priority > 0:
            owners.preempt_now(settings)

    after_commit(session, send)


def get(*, session: Session, principal: Principal, experiment_id: str) -> Experiment:
    """The experiment, or 404 (also when it belongs to someone else)."""
    return get_visible(session, Experiment, experiment_id, principal)


def list_page(
    *, session: Session, principal: Principal, limit: int, cursor: str | None, **filters: str | None
) -> tuple[list[Experiment], str | None]:
    """One page, newest first, and the cursor of the next (None on the last page)."""
    return repo.list_page(session, limit=limit, cursor=cursor, owner_id=principal.scope, **filters)


def cancel(*, session: Session, experiment: Experiment) -> Experiment:
    if not repo.request_cancel(session, experiment):
        raise Conflict(f"experiment {experiment.id!r} already ended ({experiment.status})")
    return experiment


def retry(
    *, session: Session, settings: Settings, principal: Principal, experiment: Experiment
) -> Experiment:
    if experiment.status not in (Status.failed.value, Status.cancelled.value):
        raise Conflict(
            f"only failed or cancelled experiments can be retried; "
            f"{experiment.id!r} is {experiment.status}"
        )
    limits.check_queue(session, principal.owner_id, 1, settings)
    if not repo.retry(session, experiment):
        raise Conflict(f"experiment {experiment.id!r} changed status; try again")
    enqueue_after_commit(session, settings, [experiment.id])
    return experiment


def metric_series(
    *,
    session: Session,
    experiment: Experiment,
    names: list[str] | None,
    after_step: int | None,
    max_points: int | None,
) -> dict[str, list[Row]]:
    """One experiment's series as (step, epoch, value) rows, downsampled if asked.

    Once the experiment has ended, an unknown name is a 422 that lists the names it has.
    """
    chain = repo.lineage(session, experiment)
    if names and Status(experiment.status) in TERMINAL:
        check_names(names, metrics_repo.names(session, [i for i, _ in chain]), field="name")
    if experiment.fork:
        return _lineage_rows(session, chain, names, after_step, max_points)
    found = _rows(session, [experiment.id], names, after_step, max_points)
    return found.get(experiment.id, {})


def metric_names(*, session: Session, experiment: Experiment) -> list[str]:
    """Every metric name a read of the experiment has (a fork's: its lineage's too)."""
    return metrics_repo.names(session, [i for i, _ in repo.lineage(session, experiment)])


def _lineage_rows(
    session: Session,
    chain: list[tuple[str, int | None]],
    names: list[str] | None,
    after_step: int | None,
    max_points: int | None,
) -> dict[str, list[Row]]:
    """A fork's series: its lineage's points up to the fork step, then its own (stored
    once, in each experiment's own rows: a fork copies nothing)."""
    ids = [i for i, _ in chain]
    found = metrics_repo.series_rows(session, ids, names=names, after_step=after_step)
    series = metrics_repo.compose_lineage(chain, found)
    if max_points:
        series = {name: downsample(rows, max_points) for name, rows in series.items()}
    return series


def check_names(wanted: Sequence[str], have: Sequence[str], *, field: str) -> None:
    """InvalidSpec (422) naming each unknown metric and listing the known ones."""
    unknown = [n for n in wanted if n not in have]
    if unknown:
        listed = ", ".join(have) or "none yet"
        message = f"unknown metric {', '.join(map(repr, unknown))}; it has: {listed}"
        raise InvalidSpec(
            f"{field}: {message}",
            errors=[{"path": field, "message": message, "type": "value_error"}],
            names=list(have),
        )


def many_series(
    *,
    session: Session,
    principal: Principal,
    experiment_ids: list[str],
    names: list[str] | None,
    after_step: int | None,
    max_points: int | None,
) -> dict[str, dict[str, list[Row]]]:
    """Curves of many experiments in one query (e.g. a sweep's); each must be visible.

    A `name` that none of them (their lineages included) has reported is a 422 listing the
    names they have, once at least one of them has ended: as for one experiment, a name
    still unknown after a run ended is a typo, not a metric yet to come. A name that some
    of them have is never an error (a sweep's arms may report different diagnostics).
    """
    rows = [get(session=session, principal=principal, experiment_id=i) for i in experiment_ids]
    if not experiment_ids:
        return {}
    if names and any(Status(r.status) in TERMINAL for r in rows):
        lineages = {i for r in rows for i, _ in repo.lineage(session, r)}
        check_names(names, metrics_repo.names(session, sorted(lineages)), field="name")
    own = [r.id for r in rows if not r.fork]
    out = _rows(session, own, names, after_step, max_points) if own else {}
    for fork in (r for r in rows if r.fork):
        chain = repo.lineage(session, fork)
        out[fork.id] = _lineage_rows(session, chain, names, after_step, max_points)
    return {i: out[i] for i in experiment_ids}


# A series at most this many times max_points long is read whole and downsampled here;
# a longer one from the rollup, reading O(max_points * log) rows (core/store/rollup.py).
WHOLE_READ_FACTOR = 8


def _rows(
    session: Session,
    ids: list[str],
    names: list[str] | None,
    after_step: int | None,
    max_points: int | None,
) -> dict[str, dict[str, list[Row]]]:
    if not max_points:
        found = metrics_repo.series_rows(session, ids, names=names, after_step=after_step)
        return {i: found.get(i, {}) for i in ids}
    out: dict[str, dict[str, list[Row]]] = {i: {} for i in ids}
    whole: dict[str, list[str]] = defaultdict(list)
    for (experiment_id, name), count in sorted(series_read.counts(session, ids, names).items()):
        lo = 0
        if after_step is not None and count > WHOLE_READ_FACTOR * max_points:
            first = series_read.first_seq_after(session, experiment_id, name, after_step)
            lo = count if first is None else first
        if count - lo <= WHOLE_READ_FACTOR * max_points:
            whole[experiment_id].append(name)
        else:
            out[experiment_id][name] = series_read.sampled(
                session, experiment_id, name, lo=lo, n=count - lo, max_points=max_points
            )
    for group, names_ in _by_names(whole).items():
        found = metrics_repo.series_rows(session, group, names=names_, after_step=after_step)
        for experiment_id, by_name in found.items():
            for name, rows in by_name.items():
                out[experiment_id][name] = downsample(rows, max_points)
    return {i: dict(sorted(series.items())) for i, series in out.items()}


def _by_names(whole: dict[str, list[str]]) -> dict[tuple[str, ...], list[str]]:
    """Experiments grouped by the names to read whole: one query per group."""
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for experiment_id, names in whole.items():
        groups[tuple(names)].append(experiment_id)
    return {tuple(ids): list(names) for names, ids in groups.items()}


def weights_file(*, settings: Settings, experiment: Experiment) -> Path:
    """The exported weights of a succeeded experiment (in the shared checkpoint directory)."""
    path = weights_path(settings, experiment.id)
    if experiment.status != Status.succeeded.value:
        # The experiment exists; its status has no weights (yet): a conflict, not a 404.
        raise Conflict(
            f"experiment {experiment.id!r} has no final weights (status {experiment.status})"
        )
    if not path.exists():
        raise NotFound(f"experiment {experiment.id!r}: its final weights file is gone")
    return path
