"""The read path of `GET /clusters/{id}` and `GET /clusters` (docs/read-path.md).

One statement per read, run on the driver connection: the cluster's columns and its nodes
as an array of row values ordered by index. No ORM objects, no per-statement SQLAlchemy
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
from app.schemas.clusters import (
    CLUSTER_COLUMNS,
    HEAD_FIELDS,
    NODE_COLUMNS,
    TAIL_FIELDS,
    ClusterOut,
    ClusterPage,
    NodeOut,
    billing_of,
    cluster_view,
    node_view,
)
from app.services.state import utcnow

_CLUSTER_COLS = tuple(CLUSTER_COLUMNS.values())
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
_PAGE_JSON = TypeAdapter(_typed_dict("ClusterPageDict", {
    "items": list[_typed_dict("ClusterDict", {  # type: ignore[misc]
        **_annotations(ClusterOut), "nodes": list[_NODE_DICT],  # type: ignore[valid-type]
    })],
    **_annotations(ClusterPage, ["next"]),
}))


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
    digest: str  # of head, nodes and tail: the state an ETag names (app/api/etags.py)
    bills: bool  # a node bills now: the response's cost moves with the clock


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
    return encoded(row.team_id, row.id, billing_of(row.nodes), head, nodes, tail)


def encoded(team_id: uuid.UUID, cluster_id: uuid.UUID, billing: tuple[Billing, ...],
            head: bytes, nodes: bytes, tail: bytes) -> EncodedCluster:
    """An `EncodedCluster` of these parts, with what its ETag needs worked out once."""
    digest = hashlib.blake2b(head, digest_size=12)
    digest.update(nodes)
    digest.update(tail)
    return EncodedCluster(
        team_id=team_id, id=cluster_id, billing=billing, head=head, nodes=nodes, tail=tail,
        digest=digest.hexdigest(), bills=any(is_billing(*node) for node in billing))


async def read_cluster(conn: asyncpg.Connection, cluster_id: uuid.UUID) -> EncodedCluster | None:
    """One cluster with its nodes, encoded (any team's: the caller checks `team_id`)."""
    record = await conn.fetchrow(READ_ONE_SQL, cluster_id)
    return None if record is None else encode(row_of(record))


async def read_cluster_page(
    conn: asyncpg.Connection,
    team_id: uuid.UUID,
    *,
    statuses: list[str] | None,
    name: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[ClusterRow]:
    """A team's clusters newest first (ties by id, descending), strictly after the cursor
    `after` = (created_at, id) of the previous page's last cluster; at most `limit`."""
    where, args = ["c.team_id = $1"], [team_id]
    if statuses:
        args.append(list(statuses))
        where.append(f"c.status = ANY(${len(args)}::varchar[])")
    if name:
        args.append(name)
        where.append(f"c.name = ${len(args)}")
    if after is not None:
        args += [after[0], after[1]]
        ts, cid = f"${len(args) - 1}", f"${len(args)}"
        where.append(f"(c.created_at < {ts} OR (c.created_at = {ts} AND c.id < {cid}))")
    args.append(limit)
    sql = (f"{_SELECT} WHERE {' AND '.join(where)} "
           f"ORDER BY c.created_at DESC, c.id DESC LIMIT ${len(args)}")
    return [row_of(r) for r in await conn.fetch(sql, *args)]


def cluster_json(cluster: EncodedCluster, now: datetime | None = None) -> bytes:
    """The body of `GET /clusters/{id}`: the bytes FastAPI writes for `to_out(...)`,
    priced now."""
    hourly, accrued = prices(cluster.billing, now or utcnow())
    return b"".join((
        cluster.head, b',"nodes":', cluster.nodes,
        b',"hourly_rate":', _FLOAT_JSON.dump_json(hourly),
        b',"accrued_cost":', _FLOAT_JSON.dump_json(accrued), b",", cluster.tail,
    ))


def page_json(rows: list[ClusterRow], next_url: str | None, now: datetime | None = None) -> bytes:
    """The body of `GET /clusters`: the bytes FastAPI writes for a ClusterPage, priced now
    (one encoding pass for the page)."""
    now = now or utcnow()
    return _PAGE_JSON.dump_json({
        "items": [cluster_view(r.columns, r.nodes, now) for r in rows], "next": next_url,
    })
