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
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from app.db.session import driver_connection
from app.domain.crypto import decrypt
from app.webhooks import filters, metrics, sender, signing
from app.webhooks import statements as sql
from app.webhooks.schedule import TICK_S, enqueue

if TYPE_CHECKING:
    from app.webhooks.engine import Deliverer

log = logging.getLogger("hangar.webhooks")

MAX_IN_FLIGHT = 8  # requests at once per endpoint
EVENT_BATCH = 20  # events read per cluster at once
IDLE_LINGER_S = 1.0  # a run waits this long for more events before letting go
RUN_BUDGET_S = 30.0  # then it lets go and wakes itself again (others get the slot)
QUIET_LOOK_S = 0.25  # how often a busy run of a failing receiver looks for new events


def utcnow() -> datetime:
    return datetime.now(UTC)


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
                    rows = await conn.fetch(sql.PENDING, self.id, excluded, EVENT_BATCH)
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
                            await conn.execute(sql.GIVE_UP, self.id, self.owner)
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
            await conn.execute(sql.SKIP_PURGED, self.id, cluster_id, last, delivered)
        log.info("webhook %s: events of cluster %s up to %d were purged before delivery",
                 self.id, cluster_id, last)

    # --- lease -----------------------------------------------------------------------------

    async def _renew(self) -> None:
        interval = min(self.settings.webhook_lease_s / 3, 2.0)
        while True:
            await asyncio.sleep(interval)
            try:
                async with driver_connection(self.d.engine) as conn:
                    gen = await conn.fetchval(sql.RENEW, self.id, self.owner,
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
            if await conn.fetchval(sql.RELEASE, self.id, self.owner, self.gen, next_run_at):
                return True
            row = await conn.fetchrow(sql.LEASE_STATE, self.id)
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
                if await conn.fetchval(sql.SKIP, self.id, lane.cluster_id, passed,
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
                sql.RECORD, self.id, lane.cluster_id, new_seq, lane.delivered_seq, attempts,
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
                    await conn.execute(sql.SUCCEEDED, self.id)
            return
        async with driver_connection(self.d.engine) as conn:
            since = await conn.fetchval(sql.FAILED, self.id)
            self.failing = True
            if since is None:
                return
            failing_for = (utcnow() - since).total_seconds()
            if failing_for < self.settings.webhook_disable_after_s:
                return
            reason = (f"every attempt failed since {since.isoformat(timespec='seconds')} "
                      f"({_span(failing_for)})")
            disabled = await conn.fetchval(sql.DISABLE, self.id, reason)
        if disabled:
            metrics.DISABLED.inc()
            log.warning("webhook %s disabled: %s", self.id, reason)
            if self.d.on_disabled is not None:
                await self.d.on_disabled(self.id)
        self._lose()


def _span(seconds: float) -> str:
    """3 days read "72 h"; a short setting (tests, development) "3 s" or "5 min"."""
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
