"""The read path of `GET /clusters/{id}` and `GET /clusters` (docs/read-path.md).

Statements run on the driver connection: a cluster's (or a page's clusters') columns and
its nodes as an array of row values ordered by index, and a page's order (`read_page`:
ids only; the clusters come from the read cache or `read_clusters`). No ORM objects, no per-statement SQLAlchemy
work (a Core execute costs ~3x the driver's own CPU here), and one snapshot for the cluster
and its nodes. The columns and the encoding come from the one encoder beside the models
(`app/schemas/clusters.py`: CLUSTER_COLUMNS, NODE_COLUMNS, node_view, cluster_view), so
the responses are the bytes `to_out(...)` gives (tests compare them).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, TypeAdapter
from sqlalchemy.dialects.postgresql import JSONB
from typing_extensions import TypedDict

from app.db.models import Cluster, Node
from app.domain.billing import Billing, is_billing, prices
from app.domain.status import ClusterStatus
from app.schemas.clusters import (
    CLUSTER_COLUMNS,
    HEAD_FIELDS,
    NODE_COLUMNS,
    TAIL_FIELDS,
    ClusterOut,
    ClusterPage,
    NodeOut,
    billing_of,
    node_view,
)
from app.services.state import utcnow

_CLUSTER_COLS = tuple(CLUSTER_COLUMNS.values())
_STATUSES = frozenset(s.value for s in ClusterStatus)
_NODE_COLS = tuple(NODE_COLUMNS.values())
# JSONB arrives as text on the driver connection.
_JSON_COLS = frozenset(c for c in _CLUSTER_COLS if isinstance(Cluster.__table__.c[c].type, JSONB))


def _check_columns() -> None:
    """Every column the encoder names exists (a renamed column fails at import)."""
    for table, columns in ((Cluster, _CLUSTER_COLS), (Node, _NODE_COLS)):
        missing = [c for c in columns if c not in table.__table__.c]
        if missing:
            raise RuntimeError(f"{table.__name__} has no column {missing}")


_check_columns()

_SELECT = (
    "SELECT c.team_id, "
    + ", ".join(f'c."{col}"' for col in _CLUSTER_COLS)
    + ", ARRAY(SELECT ROW("
    + ", ".join(f'n."{col}"' for col in _NODE_COLS)
    + ') FROM nodes n WHERE n.cluster_id = c.id ORDER BY n."index") AS nodes'
    + " FROM clusters c"
)
READ_ONE_SQL = _SELECT + " WHERE c.id = $1"
READ_MANY_SQL = _SELECT + " WHERE c.id = ANY($1::uuid[])"


def _typed_dict(name: str, fields: dict[str, Any]) -> Any:
    return TypedDict(name, fields)  # type: ignore[operator]


def _annotations(model: type[BaseModel], names: Sequence[str] | None = None) -> dict[str, Any]:
    return {k: f.annotation for k, f in model.model_fields.items() if names is None or k in names}


# ClusterOut's JSON is its fields' "key":value pairs in order, so it is assembled from parts
# pydantic encodes with the model's own field types (TypedDicts of them): the parts that
# come from the rows are encoded once per read, the prices at every response.
_NODE_DICT = _typed_dict("NodeDict", _annotations(NodeOut))
_HEAD_JSON = TypeAdapter(_typed_dict("ClusterHead", _annotations(ClusterOut, HEAD_FIELDS)))
_TAIL_JSON = TypeAdapter(_typed_dict("ClusterTail", _annotations(ClusterOut, TAIL_FIELDS)))
_NODES_JSON = TypeAdapter(list[_NODE_DICT])  # type: ignore[valid-type]
_FLOAT_JSON = TypeAdapter(float)
_NEXT_JSON = TypeAdapter(ClusterPage.model_fields["next"].annotation)


@dataclass(frozen=True, slots=True)
class ClusterRow:
    """A cluster's columns and its nodes' columns as read (by column name). Never mutated."""

    team_id: uuid.UUID
    columns: dict[str, Any]
    nodes: list[dict[str, Any]]

    @property
    def id(self) -> uuid.UUID:
        return self.columns["id"]

    @property
    def created_at(self) -> datetime:
        return self.columns["created_at"]


@dataclass(frozen=True, slots=True)
class EncodedCluster:
    """A `ClusterRow` kept JSON-encoded (what the read cache holds): the response fields
    that are columns, split around the priced ones (nodes, hourly_rate, accrued_cost),
    and the nodes' rates and billing times, to price them at response time. Immutable."""

    team_id: uuid.UUID
    id: uuid.UUID
    billing: tuple[Billing, ...]
    head: bytes  # b'{"id":...,"ssh_public_key":"..."' (ClusterOut's fields before nodes)
    nodes: bytes  # b'[{"index":0,...},...]'
    tail: bytes  # b'"created_at":...,"terminated_at":...}' (the fields after the prices)
    status: str  # the cluster's status as read
    digest: str  # of head, nodes and tail: the state an ETag names (app/api/etags.py)
    bills: bool  # a node bills now: the response's cost moves with the clock
    body: bytes | None  # the whole response when nothing bills (its prices hold still)


def row_of(record: Any) -> ClusterRow:
    """A `ClusterRow` from one record of `_SELECT`."""
    values = tuple(record)
    columns = dict(zip(_CLUSTER_COLS, values[1:-1], strict=True))
    for name in _JSON_COLS:
        if isinstance(columns[name], str):
            columns[name] = json.loads(columns[name])
    nodes = [dict(zip(_NODE_COLS, n, strict=True)) for n in values[-1]]
    return ClusterRow(values[0], columns, nodes)


def encode(row: ClusterRow) -> EncodedCluster:
    cols = row.columns
    head = _HEAD_JSON.dump_json({f: cols[CLUSTER_COLUMNS[f]] for f in HEAD_FIELDS})[:-1]
    nodes = _NODES_JSON.dump_json([node_view(n) for n in row.nodes])
    tail = _TAIL_JSON.dump_json({f: cols[CLUSTER_COLUMNS[f]] for f in TAIL_FIELDS})[1:]
    return encoded(row.team_id, row.id, billing_of(row.nodes), head, nodes, tail,
                   status=row.columns["status"])


def encoded(team_id: uuid.UUID, cluster_id: uuid.UUID, billing: tuple[Billing, ...],
            head: bytes, nodes: bytes, tail: bytes, *, status: str) -> EncodedCluster:
    """An `EncodedCluster` of these parts, with what its ETag needs worked out once, and
    the whole body when nothing bills: a cost that does not grow is the same at any time
    (finished clusters, most of a history page)."""
    digest = hashlib.blake2b(head, digest_size=12)
    digest.update(nodes)
    digest.update(tail)
    bills = any(is_billing(*node) for node in billing)
    body = None if bills else _assemble(head, nodes, tail, prices(billing, utcnow()))
    return EncodedCluster(
        team_id=team_id, id=cluster_id, billing=billing, head=head, nodes=nodes, tail=tail,
        status=status, digest=digest.hexdigest(), bills=bills, body=body)


async def read_cluster(conn: asyncpg.Connection, cluster_id: uuid.UUID) -> EncodedCluster | None:
    """One cluster with its nodes, encoded (any team's: the caller checks `team_id`)."""
    record = await conn.fetchrow(READ_ONE_SQL, cluster_id)
    return None if record is None else encode(row_of(record))


@dataclass(frozen=True, slots=True)
class PageEntry:
    """One cluster of a `GET /clusters` page as the page's query saw it."""

    id: uuid.UUID
    created_at: datetime
    status: str


async def read_page(
    conn: asyncpg.Connection,
    team_id: uuid.UUID,
    *,
    statuses: list[str] | None,
    name: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[PageEntry]:
    """A team's clusters newest first (ties by id, descending), strictly after the cursor
    `after` = (created_at, id) of the previous page's last cluster; at most `limit`. Only
    what the page's order and the read cache's check need: the clusters themselves come
    from the cache or `read_clusters`."""
    where, args = ["team_id = $1"], [team_id]
    if statuses:
        # Written into the statement, not passed as a parameter: with `ANY($2)` Postgres
        # settles on a generic plan for the prepared statement after a few runs, one that
        # walks the team's whole history in time order to find the few live clusters.
        # With the values in the text each filter is planned for what it asks
        # (ix_clusters_team_status_created). Only the status names are ever written.
        unknown = set(statuses) - _STATUSES
        if unknown:
            raise ValueError(f"not a cluster status: {sorted(unknown)}")
        listed = ", ".join(f"'{s}'" for s in sorted(set(statuses)))
        where.append(f"status IN ({listed})")
    if name:
        args.append(name)
        where.append(f"name = ${len(args)}")
    if after is not None:
        args += [after[0], after[1]]
        ts, cid = f"${len(args) - 1}", f"${len(args)}"
        where.append(f"(created_at < {ts} OR (created_at = {ts} AND id < {cid}))")
    args.append(limit)
    sql = (f"SELECT id, created_at, status FROM clusters WHERE {' AND '.join(where)} "
           f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}")
    return [PageEntry(*r) for r in await conn.fetch(sql, *args)]


async def read_clusters(conn: asyncpg.Connection,
                        ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EncodedCluster]:
    """These clusters with their nodes, encoded, in one statement (one snapshot); a
    cluster that no longer exists is missing from the answer."""
    if not ids:
        return {}
    records = await conn.fetch(READ_MANY_SQL, list(ids))
    return {c.id: c for c in (encode(row_of(r)) for r in records)}


def _assemble(head: bytes, nodes: bytes, tail: bytes, priced: tuple[float, float]) -> bytes:
    return b"".join((
        head, b',"nodes":', nodes,
        b',"hourly_rate":', _FLOAT_JSON.dump_json(priced[0]),
        b',"accrued_cost":', _FLOAT_JSON.dump_json(priced[1]), b",", tail,
    ))


def cluster_json(cluster: EncodedCluster, now: datetime | None = None) -> bytes:
    """The body of `GET /clusters/{id}`: the bytes FastAPI writes for `to_out(...)`,
    priced now."""
    if cluster.body is not None:
        return cluster.body
    return _assemble(cluster.head, cluster.nodes, cluster.tail,
                     prices(cluster.billing, now or utcnow()))


def page_json(clusters: Sequence[EncodedCluster], next_url: str | None,
              now: datetime | None = None) -> bytes:
    """The body of `GET /clusters`: the bytes FastAPI writes for a ClusterPage of these
    clusters, priced now."""
    now = now or utcnow()
    return b"".join((b'{"items":[', b",".join(cluster_json(c, now) for c in clusters),
                     b'],"next":', _NEXT_JSON.dump_json(next_url), b"}"))
