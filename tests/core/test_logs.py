"""Structured logs carry the experiment id."""

from __future__ import annotations

import json
import logging

from core.logs import JsonFormatter, TextFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("actlab.worker", logging.INFO, __file__, 1, "ran %s", ("x",), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_context() -> None:
    line = JsonFormatter().format(_record(experiment_id="exp_1", attempt=2))
    entry = json.loads(line)
    assert entry["message"] == "ran x"
    assert entry["experiment_id"] == "exp_1" and entry["attempt"] == 2
    assert entry["level"] == "INFO" and entry["logger"] == "actlab.worker"


def test_text_lines_carry_context() -> None:
    line = TextFormatter("%(message)s").format(_record(experiment_id="exp_1"))
    assert line == "ran x [experiment_id=exp_1]"
    assert TextFormatter("%(message)s").format(_record()) == "ran x"
