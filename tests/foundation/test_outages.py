"""Telling an outage from a bug (app/outages.py), from the errors real clients raise."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db.session import make_engine
from app.embedded import free_port
from app.outages import Outage, database_unavailable, describe, redis_unavailable


async def test_a_database_nobody_listens_on_is_unavailable() -> None:
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/x", pool_size=1)
    try:
        with pytest.raises(Exception) as caught:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert database_unavailable(caught.value) and not redis_unavailable(caught.value)


async def test_a_redis_nobody_listens_on_is_unavailable() -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(Exception) as caught:
            await client.ping()
    finally:
        await client.aclose()
    assert redis_unavailable(caught.value) and not database_unavailable(caught.value)


async def test_bugs_and_bad_values_are_not_outages(engine) -> None:
    assert not database_unavailable(OSError("an SSH or HTTP client's socket error"))
    assert not redis_unavailable(TimeoutError())
    secret = "value-from-a-caller"
    with pytest.raises(DBAPIError) as caught:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT CAST(:v AS integer)"), {"v": secret})
    assert not database_unavailable(caught.value)
    line = describe(caught.value)
    assert "sqlstate 22" in line and secret not in line, line


def test_one_warning_per_outage(caplog) -> None:
    outage = Outage("the thing", "waiting")
    with caplog.at_level(logging.INFO, logger="hangar.outages"):
        assert outage.failed(OSError("refused")) is True
        assert outage.failed(OSError("refused")) is False
        assert outage.back() is True and outage.back() is False
        assert outage.failed() is True
    got = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in got] == ["WARNING", "INFO", "WARNING"]
    assert got[0][1] == "the thing is unavailable (OSError: refused); waiting"
    assert got[1][1].startswith("the thing is back after") and "2 failed calls" in got[1][1]
