"""Delivering one endpoint's events: a run holds the endpoint's lease and walks its cursors.

Per (endpoint, cluster) a cursor says how far the endpoint got in that cluster's events
(`webhook_cursors.delivered_seq`). Event ids grow per cluster in commit order, so the
events after a cursor are read from `cluster_events` (the truth the event stream replays
from) and none can be skipped. A run keeps one *lane* per cluster with pending events: a
lane sends that cluster's events one after another (a later event waits until the earlier
one is delivered or abandoned), and lanes of different clusters run side by side, at most
`MAX_IN_FLIGHT` requests at once per endpoint. A failed attempt stops the lane until its
retry is due (`next_attempt_at`, along HANGAR_WEBHOOK_RETRY_SCHEDULE); after the last
retry the event is recorded as failed and the lane goes on.

One run per endpoint at a time: the run holds the endpoint's lease (renewed while it
runs). A wake-up that finds the lease taken bumps `wake_gen`, and the run lets go only with
the generation it last looked at, so a wake-up is never lost between its last look and its
release. A run ends when it has been idle for `IDLE_LINGER_S`, or after `RUN_BUDGET_S`
(then it wakes itself again at once); it schedules itself for its earliest retry.

A worker killed mid-delivery leaves its cursor where it was: the delivery is sent again
(the same `webhook-id`) once the lease lapses and the sweep wakes the endpoint. At least
once, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import driver_connection
from app.domain.crypto import decrypt
from app.redis_names import RedisNames
from app.settings import Settings
from app.webhooks import filters, metrics, sender, signing
from app.webhooks.transport import make_client

log = logging.getLogger("hangar.webhooks")

JOB = "deliver_webhooks"
TICK_S = 0.05  # wake-ups of one endpoint within a tick share one job (its id)
MAX_IN_FLIGHT = 8  # requests at once per endpoint
EVENT_BATCH = 20  # events read per cluster at once
IDLE_LINGER_S = 1.0  # a run waits this long for more events before letting go
RUN_BUDGET_S = 30.0  # then it lets go and wakes itself again (others get the slot)
QUIET_LOOK_S = 0.25  # how often a busy run of a failing receiver looks for new events
ATTEMPTS_KEPT = timedelta(days=7)
MAX_CLIENTS = 256  # HTTP clients kept per process (one per endpoint, least recent dropped)
_background: set[asyncio.Task] = set()


def utcnow() -> datetime:
    return datetime.now(UTC)


async def enqueue(redis: ArqRedis, names: RedisNames, endpoint_id: uuid.UUID | str,
                  at: float | None = None) -> None:
    """Run the endpoint's job at the end of the tick holding `at` (default: now). Wake-ups
    in one tick share the job (its id); the job starts after all of them."""
    tick = math.floor((time.time() if at is None else at) / TICK_S) + 1
    await redis.enqueue_job(JOB, str(endpoint_id), _job_id=names.job_id("wh", endpoint_id, tick),
                            _queue_name=names.queue,
                            _defer_until=datetime.fromtimestamp(tick * TICK_S, UTC))


# --- SQL (asyncpg: one prepared statement each) -----------------------------------------------

_TAKE_LEASE = """
UPDATE webhook_endpoints SET
    wake_gen = wake_gen + 1,
    lease_owner = CASE WHEN lease_until IS NULL OR lease_until < now() THEN $2
                       ELSE lease_owner END,
    lease_until = CASE WHEN lease_until IS NULL OR lease_until < now()
                       THEN now() + make_interval(secs => $3) ELSE lease_until END
WHERE id = $1 AND disabled_at IS NULL
RETURNING lease_owner, wake_gen, url, events, secret_enc, failing_since
"""
_RENEW = """
UPDATE webhook_endpoints SET lease_until = now() + make_interval(secs => $3)
WHERE id = $1 AND lease_owner = $2 AND disabled_at IS NULL
RETURNING wake_gen
"""
_RELEASE = """
UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL, next_run_at = $4
WHERE id = $1 AND lease_owner = $2 AND wake_gen = $3
RETURNING 1
"""
_GIVE_UP = """
UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL, next_run_at = now()
WHERE id = $1 AND lease_owner = $2
"""
_LEASE_STATE = "SELECT lease_owner, wake_gen FROM webhook_endpoints WHERE id = $1"
# Every cursor of the endpoint with events after it, and for those that are due and have no
# lane running here ($2), their next events: one statement per look.
_PENDING = """
SELECT w.cluster_id, w.delivered_seq, w.attempts, w.next_attempt_at, c.last_event_seq,
       (w.next_attempt_at IS NULL OR w.next_attempt_at <= now()) AS due,
       e.seq, e.type, e.data::text AS data, e.created_at
FROM webhook_cursors w
JOIN clusters c ON c.id = w.cluster_id
LEFT JOIN LATERAL (
    SELECT ev.seq, ev.type, ev.data, ev.created_at FROM cluster_events ev
    WHERE ev.cluster_id = w.cluster_id AND ev.seq > w.delivered_seq
      AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= now())
      AND NOT (w.cluster_id = ANY($2::uuid[]))
    ORDER BY ev.seq LIMIT $3
) e ON true
WHERE w.endpoint_id = $1 AND c.last_event_seq > w.delivered_seq
ORDER BY w.cluster_id, e.seq
"""
# Move the cursor (guarded by where it was) and record the attempt, in one statement.
_RECORD = """
WITH moved AS (
    UPDATE webhook_cursors SET delivered_seq = $3, attempts = $5, next_attempt_at = $6
    WHERE endpoint_id = $1 AND cluster_id = $2 AND delivered_seq = $4
    RETURNING 1
)
INSERT INTO webhook_attempts
    (endpoint_id, event_id, type, attempt, status_code, error, at, next_attempt_at)
SELECT $1, $7, $8, $9, $10, $11, now(), $6 FROM moved
RETURNING id
"""
_SKIP = """
UPDATE webhook_cursors SET delivered_seq = $3
WHERE endpoint_id = $1 AND cluster_id = $2 AND delivered_seq = $4
RETURNING 1
"""
_SKIP_PURGED = """
UPDATE webhook_cursors SET delivered_seq = $3, attempts = 0, next_attempt_at = NULL
WHERE endpoint_id = $1 AND cluster_id = $2 AND delivered_seq = $4
"""
_SUCCEEDED = """
UPDATE webhook_endpoints SET failing_since = NULL, last_success_at = now() WHERE id = $1
"""
_FAILED = """
UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now()) WHERE id = $1
RETURNING failing_since
"""
_DISABLE = """
UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = $2,
    lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND disabled_at IS NULL
RETURNING 1
"""


# --- the per-process part ---------------------------------------------------------------------


@dataclass
class Deliverer:
    """What a worker process needs to deliver: its database, its Redis, one HTTP client,
    and the runs under way here (so a wake-up for one of them is a poke, not a job)."""

    engine: AsyncEngine
    redis: ArqRedis
    settings: Settings
    max_runs: int
    runs: dict[uuid.UUID, EndpointRun] = field(default_factory=dict)
    on_disabled: Any = None  # async callable(endpoint_id): tell the wakers

    @property
    def names(self) -> RedisNames:
        return self.settings.redis_names
    # One HTTP client per endpoint (its keep-alive connections, at most MAX_IN_FLIGHT):
    # httpcore's pool scans every connection it holds on each request, so one pool for
    # every receiver costs more the more receivers there are.
    clients: OrderedDict[uuid.UUID, httpx.AsyncClient] = field(default_factory=OrderedDict)

    def client(self, endpoint_id: uuid.UUID) -> httpx.AsyncClient:
        client = self.clients.get(endpoint_id)
        if client is None:
            client = self.clients[endpoint_id] = make_client(
                self.settings.webhook_allow_private, self.settings.webhook_timeout_s,
                max_connections=MAX_IN_FLIGHT)
            while len(self.clients) > MAX_CLIENTS:
                _, old = self.clients.popitem(last=False)
                task = asyncio.create_task(old.aclose())
                _background.add(task)
                task.add_done_callback(_background.discard)
        self.clients.move_to_end(endpoint_id)
        return client

    async def aclose(self) -> None:
        while self.clients:
            _, client = self.clients.popitem()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def wake(self, endpoint_id: uuid.UUID) -> None:
        run = self.runs.get(endpoint_id)
        if run is not None and not run.finishing:
            run.poke()
            return
        await enqueue(self.redis, self.names, endpoint_id)

    async def deliver(self, endpoint_id: uuid.UUID) -> str:
        """The job: take the endpoint's lease and deliver what is due."""
        if len(self.runs) >= self.max_runs:
            # Keep arq slots for the other jobs: try again shortly (the rows keep the work).
            await enqueue(self.redis, self.names, endpoint_id, time.time() + 1.0)
            return "deferred"
        owner = uuid.uuid4()
        async with driver_connection(self.engine) as conn:
            row = await conn.fetchrow(_TAKE_LEASE, endpoint_id, owner, self.settings.webhook_lease_s)
        if row is None:
            return "gone"  # deleted or disabled
        if row["lease_owner"] != owner:
            return "busy"  # the holder sees wake_gen move and looks again
        run = EndpointRun(self, endpoint_id, owner, row)
        self.runs[endpoint_id] = run
        try:
            return await run.run()
        finally:
            if self.runs.get(endpoint_id) is run:
                del self.runs[endpoint_id]


# --- one endpoint's run -----------------------------------------------------------------------


@dataclass
class Lane:
    cluster_id: uuid.UUID
    delivered_seq: int
    attempts: int
    events: list[asyncpg.Record]
    more: bool = False  # events beyond `events` exist: look again when the lane ends

    @property
    def last_seq(self) -> int:
        return self.events[-1]["seq"] if self.events else self.delivered_seq


class EndpointRun:
    def __init__(self, d: Deliverer, endpoint_id: uuid.UUID, owner: uuid.UUID,
                 row: asyncpg.Record) -> None:
        self.d = d
        self.settings = d.settings
        self.id = endpoint_id
        self.owner = owner
        self.gen: int = row["wake_gen"]
        self.url: str = row["url"]
        events = row["events"]
        self.patterns: list[str] = json.loads(events) if isinstance(events, str) else events
        self.key = signing.secret_key(
            decrypt(self.settings.secret_key.get_secret_value(), row["secret_enc"]))
        self.failing = row["failing_since"] is not None
        self.schedule = self.settings.webhook_retry_delays
        self.client = d.client(endpoint_id)
        self.lanes: dict[uuid.UUID, asyncio.Task] = {}
        self._lanes_info: dict[uuid.UUID, Lane] = {}
        self.sem = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.finishing = False  # letting go: wake-ups go through the job again
        self.stopping = False  # budget spent or lease lost: lanes stop after their send
        self.lost = False
        self._poked = asyncio.Event()
        self._last_success_write = 0.0

    def poke(self) -> None:
        self._poked.set()

    async def run(self) -> str:
        renewer = asyncio.create_task(self._renew(), name=f"webhook-lease-{self.id}")
        started = last_busy = time.monotonic()
        next_due: datetime | None = None
        result = "idle"
        try:
            while True:
                self._poked.clear()
                if self.lost:
                    return "lease lost"
                now = utcnow()
                over_budget = time.monotonic() - started > RUN_BUDGET_S
                next_due = None
                due_left = False
                looked_at = time.monotonic()
                excluded = list(self.lanes)  # their events are not read (lanes have them)
                async with driver_connection(self.d.engine) as conn:
                    rows = await conn.fetch(_PENDING, self.id, excluded, EVENT_BATCH)
                for cluster_id, group in itertools.groupby(rows, key=lambda r: r["cluster_id"]):
                    group = list(group)
                    first = group[0]
                    running = self._lanes_info.get(cluster_id)
                    if running is not None:
                        if first["last_event_seq"] > running.last_seq:
                            running.more = True
                        continue
                    if cluster_id in excluded:  # its lane ended during the look: again
                        self.poke()
                        continue
                    at = first["next_attempt_at"]
                    if at is not None and at > now:
                        next_due = at if next_due is None else min(next_due, at)
                        continue
                    events = [r for r in group if r["seq"] is not None]
                    if not events and not first["due"]:  # due by our clock, not the database's
                        soon = max(at or now, now) + timedelta(seconds=TICK_S)
                        next_due = soon if next_due is None else min(next_due, soon)
                        continue
                    if not events:  # behind, yet no events: purged (HANGAR_EVENT_RETENTION_DAYS)
                        await self._skip_to(cluster_id, first["delivered_seq"],
                                            first["last_event_seq"])
                        continue
                    if over_budget:
                        due_left = True
                        continue
                    self._start_lane(Lane(cluster_id, first["delivered_seq"], first["attempts"],
                                          events, more=len(events) >= EVENT_BATCH))
                if self.lanes:
                    last_busy = time.monotonic()
                    if over_budget:
                        self.stopping = True  # lanes stop after the send under way
                elif due_left or time.monotonic() - last_busy >= IDLE_LINGER_S:
                    self.finishing = True
                    if await self._release(utcnow() if due_left else next_due):
                        result = "budget spent" if due_left else "idle"
                        break
                    self.finishing = False  # woken meanwhile: look again
                    continue
                timeout = IDLE_LINGER_S
                if next_due is not None:
                    timeout = min(timeout, max((next_due - utcnow()).total_seconds(), 0.0))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._poked.wait()
                if self.failing and self.lanes and not self.lost:
                    # A failing receiver with attempts under way: look at most every
                    # QUIET_LOOK_S, not once per event (its new events would mostly wait for
                    # the same dead receiver; the healthy endpoints get the CPU).
                    await asyncio.sleep(max(looked_at + QUIET_LOOK_S - time.monotonic(), 0))
        except BaseException:
            await self._abandon_lanes()
            if not self.lost:
                with contextlib.suppress(Exception):  # let the next job take over now
                    async with asyncio.timeout(2):
                        async with driver_connection(self.d.engine) as conn:
                            await conn.execute(_GIVE_UP, self.id, self.owner)
            raise
        finally:
            renewer.cancel()
            with contextlib.suppress(BaseException):
                await renewer
        if result == "budget spent":
            await enqueue(self.d.redis, self.d.names, self.id)
        elif next_due is not None:
            await enqueue(self.d.redis, self.d.names, self.id, next_due.timestamp())
        return result

    async def _skip_to(self, cluster_id: uuid.UUID, delivered: int, last: int) -> None:
        """Nothing left to read below `last` (the events were purged): move past it."""
        async with driver_connection(self.d.engine) as conn:
            await conn.execute(_SKIP_PURGED, self.id, cluster_id, last, delivered)
        log.info("webhook %s: events of cluster %s up to %d were purged before delivery",
                 self.id, cluster_id, last)

    # --- lease -----------------------------------------------------------------------------

    async def _renew(self) -> None:
        interval = min(self.settings.webhook_lease_s / 3, 2.0)
        while True:
            await asyncio.sleep(interval)
            try:
                async with driver_connection(self.d.engine) as conn:
                    gen = await conn.fetchval(_RENEW, self.id, self.owner,
                                              self.settings.webhook_lease_s)
            except Exception as exc:  # the next renewal may work; the lease has slack
                log.warning("webhook %s: could not renew the lease (%s)", self.id,
                            type(exc).__name__)
                continue
            if gen is None:
                self._lose()
                return
            if gen != self.gen:  # a wake-up in another process: look again
                self.poke()

    def _lose(self) -> None:
        self.lost = self.stopping = True
        for task in self.lanes.values():
            task.cancel()
        self.poke()

    async def _release(self, next_run_at: datetime | None) -> bool:
        """Let go, unless a wake-up came since we last looked (then keep the lease and look
        again). False also when the lease is gone."""
        async with driver_connection(self.d.engine) as conn:
            if await conn.fetchval(_RELEASE, self.id, self.owner, self.gen, next_run_at):
                return True
            row = await conn.fetchrow(_LEASE_STATE, self.id)
        if row is None or row["lease_owner"] != self.owner:
            self._lose()
            return False
        self.gen = row["wake_gen"]
        return False

    async def _abandon_lanes(self) -> None:
        for task in self.lanes.values():
            task.cancel()
        await asyncio.gather(*self.lanes.values(), return_exceptions=True)

    # --- lanes -----------------------------------------------------------------------------

    def _start_lane(self, lane: Lane) -> None:
        task = asyncio.create_task(self._lane(lane), name=f"webhook-lane-{self.id}")
        self.lanes[lane.cluster_id] = task
        self._lanes_info[lane.cluster_id] = lane

        def done(t: asyncio.Task) -> None:
            if self.lanes.get(lane.cluster_id) is t:
                del self.lanes[lane.cluster_id]
                del self._lanes_info[lane.cluster_id]
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                log.warning("webhook %s: a delivery lane stopped (%s: %s)", self.id,
                            type(exc).__name__, exc)
            # Look again if events came meanwhile, a retry was scheduled (its time is in
            # the rows), or the lane stopped early; else the next wake-up will.
            if lane.more or lane.attempts or t.cancelled() or not self.lanes or (
                    not t.cancelled() and t.exception() is not None):
                self.poke()

        task.add_done_callback(done)

    async def _lane(self, lane: Lane) -> None:
        """Deliver one cluster's events in order, until the batch is done or one must wait."""
        passed = lane.delivered_seq  # events up to here are done (skipped ones included)
        for ev in lane.events:
            if self.stopping:
                lane.more = True
                return
            if not filters.matches(self.patterns, ev["type"]):
                passed = ev["seq"]
                continue
            if not await self._deliver(lane, passed, ev):
                return  # waits for its retry (or the lease is gone)
            passed = lane.delivered_seq
        if passed > lane.delivered_seq:  # only skipped events at the end
            async with driver_connection(self.d.engine) as conn:
                if await conn.fetchval(_SKIP, self.id, lane.cluster_id, passed,
                                       lane.delivered_seq):
                    lane.delivered_seq = passed

    async def _deliver(self, lane: Lane, passed: int, ev: asyncpg.Record) -> bool:
        """One attempt at `ev`. True when the lane may go on (delivered, or given up)."""
        seq, type_ = ev["seq"], ev["type"]
        data = json.loads(ev["data"])
        msg_id = signing.event_message_id(lane.cluster_id, seq)
        body = signing.payload(msg_id, type_, data)
        async with self.sem:
            if self.stopping:
                return False
            outcome = await sender.post(self.client, self.url, self.key, msg_id, body,
                                        self.settings.webhook_timeout_s)
        attempt = lane.attempts + 1
        if outcome.ok:
            new_seq, attempts, next_at, kind = seq, 0, None, "delivered"
        elif attempt <= len(self.schedule):
            delay = self.schedule[attempt - 1]
            new_seq, attempts, kind = passed, attempt, "retry"
            next_at = utcnow() + timedelta(seconds=delay)
        else:
            new_seq, attempts, next_at, kind = seq, 0, None, "failed"
        async with driver_connection(self.d.engine) as conn:
            recorded = await conn.fetchval(
                _RECORD, self.id, lane.cluster_id, new_seq, lane.delivered_seq, attempts,
                next_at, msg_id, type_[:64], attempt, outcome.status_code, outcome.error)
        if recorded is None:
            self.stopping = True  # the cursor moved under us (lease lost) or is gone
            return False
        lag = (utcnow() - ev["created_at"]).total_seconds() if outcome.ok else None
        metrics.observe_attempt(kind, outcome.seconds, lag)
        lane.delivered_seq, lane.attempts = new_seq, attempts
        await self._health(outcome.ok)
        return kind != "retry"

    async def _health(self, ok: bool) -> None:
        """Failing since when; disabled once failing for HANGAR_WEBHOOK_DISABLE_AFTER."""
        if ok:
            now = time.monotonic()
            if self.failing or now - self._last_success_write > 10.0:
                self.failing = False
                self._last_success_write = now
                async with driver_connection(self.d.engine) as conn:
                    await conn.execute(_SUCCEEDED, self.id)
            return
        async with driver_connection(self.d.engine) as conn:
            since = await conn.fetchval(_FAILED, self.id)
            self.failing = True
            if since is None:
                return
            failing_for = (utcnow() - since).total_seconds()
            if failing_for < self.settings.webhook_disable_after_s:
                return
            reason = (f"every attempt failed since {since.isoformat(timespec='seconds')} "
                      f"({failing_for / 3600:.0f} h)")
            disabled = await conn.fetchval(_DISABLE, self.id, reason)
        if disabled:
            metrics.DISABLED.inc()
            log.warning("webhook %s disabled: %s", self.id, reason)
            if self.d.on_disabled is not None:
                await self.d.on_disabled(self.id)
        self._lose()


# --- the sweep (cron): what Redis may have lost -----------------------------------------------

_OVERDUE = """
SELECT e.id FROM webhook_endpoints e
WHERE e.disabled_at IS NULL AND (e.lease_until IS NULL OR e.lease_until < now())
  AND (e.next_run_at <= now() OR EXISTS (
        SELECT 1 FROM webhook_cursors w JOIN clusters c ON c.id = w.cluster_id
        WHERE w.endpoint_id = e.id AND c.last_event_seq > w.delivered_seq
          AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= now())))
LIMIT 1000
"""
_PRUNE_CURSORS = """
DELETE FROM webhook_cursors w USING clusters c
WHERE c.id = w.cluster_id AND w.delivered_seq >= c.last_event_seq
  AND c.status IN ('terminated', 'failed')
  AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.cluster_id = c.id AND n.status <> 'terminated')
"""
_PRUNE_ATTEMPTS = "DELETE FROM webhook_attempts WHERE at < now() - make_interval(secs => $1)"


async def sweep(engine: AsyncEngine, redis: ArqRedis, names: RedisNames) -> int:
    """Wake every endpoint with due work and no job on it: a lost wake-up, a lost deferred
    job (Redis flushed) or a killed worker's lapsed lease delays deliveries, never loses
    them. Returns how many were woken."""
    async with driver_connection(engine) as conn:
        ids = [r[0] for r in await conn.fetch(_OVERDUE)]
    for endpoint_id in ids:
        await enqueue(redis, names, endpoint_id)
    if ids:
        log.info("webhook sweep woke %d endpoints", len(ids))
    return len(ids)


async def prune(engine: AsyncEngine) -> tuple[int, int]:
    """Drop cursors of finished clusters with nothing left to deliver (a finished cluster
    gets no more events), and attempts older than ATTEMPTS_KEPT."""
    async with driver_connection(engine) as conn:
        cursors = await conn.execute(_PRUNE_CURSORS)
        attempts = await conn.execute(_PRUNE_ATTEMPTS, ATTEMPTS_KEPT.total_seconds())
    return int(cursors.split()[-1]), int(attempts.split()[-1])
