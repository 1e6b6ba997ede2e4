"""`Idempotency-Key` for `POST /clusters` (docs/idempotency.md).

A key belongs to a team. The first request with a key claims it (a row with the request's
hash and no response, committed at once); the cluster is created in a transaction that
also writes the response into that row, so "cluster exists" and "key answered" commit
together. Then, for the same team and key:

- same body, answered: the stored response is replayed (same status, body, Location);
- same body, not answered yet: 409, the first request is still in flight;
- another body: 422, a key names one request;
- the create failed (any error, no cluster): the claim is deleted and the key is free;
- expired (`HANGAR_IDEMPOTENCY_TTL`, 24 h by default): the row is replaced;
- claimed but unanswered for longer than `ABANDONED_AFTER`: the process that claimed it
  died before creating anything (the answer commits with the cluster), so it is retaken.

All times are the database's clock, so API replicas with skewed clocks agree.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import IdempotencyKey
from app.domain.crypto import Keyring
from app.domain.errors import Conflict, InvalidRequest
from app.schemas.cluster_request import ClusterCreate

# Creating a cluster takes seconds (a catalog read and one transaction).
ABANDONED_AFTER = timedelta(minutes=2)
PURGE_EVERY_S = 300.0
_last_purge = 0.0


@dataclass(frozen=True)
class Claim:
    """This request holds the key; `claimed_at` tells this claim from a later one."""

    team_id: uuid.UUID
    key: str
    request_hash: str
    claimed_at: datetime


@dataclass(frozen=True)
class Replay:
    """The stored answer to the first request with this key."""

    status: int
    body: dict[str, Any]
    cluster_id: uuid.UUID | None


def request_hash(req: ClusterCreate, keys: Keyring | None = None) -> str:
    """The request as accepted (defaults filled in): equal requests hash alike however
    they were spelled (key order, defaults left out or written out). Secret values count
    through a keyed hash (`keys`): a stored request hash cannot be used to test guesses of
    a secret. (After HANGAR_SECRET_KEY changes, a retry with secrets no longer matches its
    key's first request: a 422, as for another body.)"""
    # Fields added later hash only when used, so requests without them keep their hash.
    fields = req.model_dump(mode="json", exclude={"secrets", "ssh_public_keys"})
    if req.ssh_public_keys:
        fields["ssh_public_keys"] = req.ssh_public_keys
    if req.secrets:
        if keys is None:
            raise ValueError("a request with secrets needs the keyring to be hashed")
        fields["secrets"] = keys.fingerprint(_canonical(req.secret_values()))
    return hashlib.sha256(_canonical(fields)).hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession],
    team_id: uuid.UUID,
    key: str,
    req_hash: str,
    ttl_s: float,
) -> Claim | Replay:
    """Claim the key for this request, or return the stored response (`Conflict`/`InvalidRequest` otherwise)."""
    await _purge_now_and_then(sessionmaker)
    now = func.now()
    row = IdempotencyKey.__table__.c
    async with sessionmaker() as session, session.begin():
        stmt = insert(IdempotencyKey).values(
            team_id=team_id, key=key, request_hash=req_hash, cluster_id=None,
            response_status=None, response_body=None, created_at=now,
            expires_at=now + func.make_interval(0, 0, 0, 0, 0, 0, float(ttl_s)),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[row.team_id, row.key],
            set_={
                "request_hash": stmt.excluded.request_hash,
                "cluster_id": None,
                "response_status": None,
                "response_body": None,
                "created_at": stmt.excluded.created_at,
                "expires_at": stmt.excluded.expires_at,
            },
            # Retake only an expired key, or an abandoned claim for this same request.
            where=or_(
                row.expires_at <= now,
                and_(
                    row.response_status.is_(None),
                    row.request_hash == req_hash,
                    row.created_at < now - ABANDONED_AFTER,
                ),
            ),
        ).returning(row.created_at)
        claimed_at = (await session.execute(stmt)).scalar_one_or_none()
        if claimed_at is not None:
            return Claim(team_id, key, req_hash, claimed_at)
        existing = (
            await session.execute(
                select(row.request_hash, row.response_status, row.response_body, row.cluster_id)
                .where(row.team_id == team_id, row.key == key)
            )
        ).one()
    if existing.request_hash != req_hash:
        raise InvalidRequest(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body. Use a new key for "
            "a new request, or resend the original body to get the original response.",
        )
    if existing.response_status is None:
        raise Conflict(
            "idempotency_request_in_flight",
            "A request with this Idempotency-Key is still being processed; retry in a moment "
            "to get its response.",
            retry_after=1,
        )
    return Replay(existing.response_status, existing.response_body, existing.cluster_id)


async def answer(
    session: AsyncSession, held: Claim, status: int, body: dict[str, Any],
    cluster_id: uuid.UUID | None,
) -> None:
    """Store the response, in the caller's transaction (the one that creates the cluster)."""
    row = IdempotencyKey.__table__.c
    result = await session.execute(
        update(IdempotencyKey)
        .where(row.team_id == held.team_id, row.key == held.key,
               row.created_at == held.claimed_at, row.response_status.is_(None))
        .values(response_status=status, response_body=body, cluster_id=cluster_id)
    )
    if result.rowcount != 1:  # our claim was retaken as abandoned: let the other one win
        raise Conflict(
            "idempotency_request_in_flight",
            "Another request with this Idempotency-Key took over; retry to get its response.",
            retry_after=1,
        )


async def release(sessionmaker: async_sessionmaker[AsyncSession], held: Claim) -> None:
    """Free the key after a create that made nothing, so the caller can retry with it."""
    row = IdempotencyKey.__table__.c
    async with sessionmaker() as session, session.begin():
        await session.execute(
            delete(IdempotencyKey).where(
                row.team_id == held.team_id, row.key == held.key,
                row.created_at == held.claimed_at, row.response_status.is_(None),
            )
        )


async def purge_expired(session: AsyncSession) -> int:
    """Delete expired keys (an index on expires_at makes this cheap). Returns the count."""
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.expires_at <= func.now())
    )
    return result.rowcount


async def _purge_now_and_then(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    global _last_purge
    if time.monotonic() - _last_purge < PURGE_EVERY_S:
        return
    _last_purge = time.monotonic()
    async with sessionmaker() as session, session.begin():
        await purge_expired(session)
