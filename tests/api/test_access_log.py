"""The access line's short path (app/api/middleware.py) writes what the structlog logger
writes, filters as it does, and steps aside when logging is configured otherwise."""

from __future__ import annotations

import json
import logging
import re

import pytest
import structlog

from app.api.middleware import ACCESS_LOGGER, access_log
from app.logging_setup import configure_logging


@pytest.fixture
def logs(capsys):
    yield capsys
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers.clear()


def _lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def _without_time(line: str) -> str:
    return re.sub(r'"timestamp": "[^"]+"', '"timestamp": "-"', line)


@pytest.mark.parametrize("as_json", [True, False])
def test_the_short_path_writes_the_loggers_line(logs, as_json) -> None:
    configure_logging("INFO", json=as_json, secrets=["a-registered-secret"])
    structlog.contextvars.bind_contextvars(request_id="hgr_" + "x" * 40,
                                           cluster_id="a-registered-secret")
    fields = dict(method="GET", route="/clusters/{cluster_id}", status=200, duration_ms=0.4)
    access_log("info", "request", **fields)
    structlog.get_logger(ACCESS_LOGGER).info("request", **fields)
    short, plain = _lines(logs)
    if as_json:
        assert _without_time(short) == _without_time(plain)
        line = json.loads(short)
        assert line["request_id"] == "hgr_xxxxxx…" and line["cluster_id"] == "[redacted]"
        assert (line["logger"], line["level"], line["event"]) == (ACCESS_LOGGER, "info",
                                                                  "request")
    else:
        assert short.partition(" ")[2] == plain.partition(" ")[2]  # after the time


def test_levels_are_honoured(logs) -> None:
    configure_logging("INFO", json=True)
    access_log("debug", "request", route="/healthz")
    assert _lines(logs) == []
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
    try:
        access_log("info", "request", route="/clusters")
        assert _lines(logs) == []
    finally:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET)


def test_other_handlers_get_the_record(logs) -> None:
    """With logging configured otherwise (here a second handler), the line goes through
    the logging module, so every handler sees it."""
    configure_logging("INFO", json=True)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logging.getLogger().addHandler(keep)
    try:
        access_log("info", "request", route="/clusters", status=200)
    finally:
        logging.getLogger().removeHandler(keep)
    assert len(_lines(logs)) == 1 and len(records) == 1
    assert records[0].name == ACCESS_LOGGER
