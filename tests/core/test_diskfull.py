"""A full disk is recognised wherever it sits in the exception chain (core/diskfull.py)."""

from __future__ import annotations

import errno

import psycopg
import pytest
import torch

from core.diskfull import is_disk_full


def _write_to_dev_full() -> OSError:
    """The kernel's own ENOSPC: every write to /dev/full fails with it."""
    try:
        with open("/dev/full", "wb", buffering=0) as fh:
            fh.write(b"x")
    except OSError as exc:
        return exc
    raise AssertionError("a write to /dev/full succeeded")


def test_a_real_enospc_is_a_full_disk() -> None:
    exc = _write_to_dev_full()
    assert exc.errno == errno.ENOSPC
    assert is_disk_full(exc)


def test_an_enospc_under_another_error_is_a_full_disk() -> None:
    """torch's zip writer raises its own RuntimeError with the OSError as its context."""
    try:
        try:
            raise _write_to_dev_full()
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")  # noqa: B904
    except RuntimeError as wrapped:
        assert wrapped.__cause__ is None and wrapped.__context__ is not None
        assert is_disk_full(wrapped)


def test_torch_save_onto_a_full_device_is_a_full_disk() -> None:
    with pytest.raises((OSError, RuntimeError)) as info, open("/dev/full", "wb") as fh:
        torch.save({"w": torch.zeros(100_000)}, fh)
    assert is_disk_full(info.value)


def test_postgres_disk_full_is_recognised_by_its_sqlstate() -> None:
    error = psycopg.errors.DiskFull("could not extend file: No space left on device")
    assert error.sqlstate == "53100"
    assert is_disk_full(error)


def test_other_errors_are_not_a_full_disk() -> None:
    assert not is_disk_full(PermissionError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(RuntimeError("[enforce fail at inline_container.cc:672] . x"))
    assert not is_disk_full(psycopg.errors.DeadlockDetected("deadlock detected"))
