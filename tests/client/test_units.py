"""Unit tests of the client's pieces: the SSE parser, tolerant models, the retry and error
mapping (respx stands in for the API), and the models against the server's schemas."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import UTC, date, datetime

import httpx
import pytest
import respx
from hangar_client import (
    Cluster,
    ClusterNotice,
    ClusterSpec,
    ClusterStatus,
    ClusterStatusChanged,
    ClusterTornDown,
    DataCenterStock,
    Event,
    GpuType,
    HangarClient,
    Limit,
    NetworkVolume,
    Node,
    NodeOutput,
    NodeStatusChanged,
    RateLimited,
    ServiceUnavailable,
    StreamToken,
    Team,
    UnexpectedResponse,
    Unreachable,
    Usage,
    UsageItem,
    UsageTotal,
)
from hangar_client._sse import Comment, Message, SSEDecoder

from app.api.routes.stream_tokens import StreamTokenOut
from app.schemas import catalog, events, spend
from app.schemas.catalog import GpuTypeOut
from app.schemas.cluster_request import ClusterCreate
from app.schemas.clusters import ClusterOut, NodeOut
from app.schemas.network_volumes import NetworkVolumeOut

URL = "http://hangar.test"
CLUSTER = {"id": "c1", "name": "train", "status": "pending", "nodes": []}


# --- the event-stream parser ---------------------------------------------------------------

STREAM = (b": connected\r\nretry: 2000\r\n\r\n"
          b"id: 1\nevent: cluster.pending\ndata: {\"status\":\"pending\"}\n\n"
          b": heartbeat\n\n"
          b"id: 2\revent: node.output\rdata: {\"line\":\"caf\xc3\xa9\"}\r\r"
          b"data: first\ndata: second\n\n")


def messages(chunks: list[bytes]) -> list:
    decoder = SSEDecoder()
    return [item for chunk in chunks for item in decoder.feed(chunk)]


def test_sse_parser_in_any_chunking() -> None:
    whole = messages([STREAM])
    assert whole == [
        Comment("connected"),
        Message("cluster.pending", '{"status":"pending"}', "1"),
        Comment("heartbeat"),
        Message("node.output", '{"line":"café"}', "2"),
        Message("message", "first\nsecond", "2"),
    ]
    # Split at every byte: CRLF halves, a UTF-8 character's halves, nothing changes.
    assert messages([STREAM[i:i + 1] for i in range(len(STREAM))]) == whole
    for cut in range(len(STREAM)):
        assert messages([STREAM[:cut], STREAM[cut:]]) == whole, cut


def test_sse_parser_holds_back_an_unfinished_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\nevent: node.ready\ndata: {}") == []
    assert decoder.feed(b"\n\n") == [Message("node.ready", "{}", "7")]


# --- models --------------------------------------------------------------------------------


def test_models_tolerate_what_a_newer_server_sends() -> None:
    cluster = Cluster.from_json({
        **CLUSTER, "status": "hibernating", "brand_new_field": {"x": 1},
        "nodes": [{"index": 0, "status": "migrating", "ssh_command": "ssh root@h -p 2",
                   "private_ip": "10.0.0.2", "another": True}],
        "network": "mesh", "secret_names": ["HF_TOKEN"], "created_at": "2026-11-29T10:00:00Z",
    })
    assert cluster.status == "hibernating" and not cluster.status.known
    assert cluster.status is not ClusterStatus.READY and not cluster.status.terminal
    assert cluster.network == "mesh" and cluster.secret_names == ["HF_TOKEN"]
    assert cluster.nodes[0].status == "migrating" and cluster.nodes[0].private_ip == "10.0.0.2"
    assert cluster.raw["brand_new_field"] == {"x": 1}
    assert cluster.created_at.year == 2026 and cluster.created_at.utcoffset().seconds == 0
    assert ClusterStatus("ready") is ClusterStatus.READY and ClusterStatus.READY.known
    # An older server: the new fields are simply absent.
    old = Cluster.from_json(CLUSTER)
    assert old.network is None and old.ssh_public_keys == [] and old.provider_cluster_id is None


def test_events_are_typed_by_their_type() -> None:
    base = {"cluster_id": "c1", "at": "2026-11-29T10:00:00+00:00"}
    assert isinstance(Event.parse(1, "cluster.ready", {**base, "status": "ready"}),
                      ClusterStatusChanged)
    node = Event.parse(2, "node.terminated", {**base, "status": "terminated", "node": 1,
                                               "reason": "deleted", "message": "gone"})
    assert isinstance(node, NodeStatusChanged) and node.node == 1 and node.reason == "deleted"
    out = Event.parse(3, "node.output", {**base, "node": 0, "line": "hi"})
    assert isinstance(out, NodeOutput) and out.line == "hi" and out.cluster_id == "c1"
    notice = Event.parse(4, "cluster.notice", {**base, "message": "m", "code": "spot_fallback"})
    assert isinstance(notice, ClusterNotice) and notice.code == "spot_fallback"
    torn = Event.parse(5, "cluster.torn_down", {**base, "status": "failed"})
    assert isinstance(torn, ClusterTornDown) and not isinstance(torn, ClusterStatusChanged)
    assert torn.status == ClusterStatus.FAILED and torn.at.day == 29
    pending = Event.parse(6, "cluster.pending", {**base, "status": "pending",
                                                 "hourly_rate": 0.69})
    assert pending.hourly_rate == 0.69
    assert type(Event.parse(7, "node.weird", "not an object")) is Event
    assert type(Event.parse(8, "cluster.hibernated", {**base})) is Event


@pytest.mark.parametrize(("model", "schema"), [
    (Cluster, ClusterOut), (Node, NodeOut), (GpuType, GpuTypeOut),
    (DataCenterStock, catalog.DataCenterStock), (NetworkVolume, NetworkVolumeOut),
    (StreamToken, StreamTokenOut), (Team, spend.TeamOut), (Limit, spend.LimitOut),
    (Usage, spend.UsageOut), (UsageItem, spend.UsageItem), (UsageTotal, spend.UsageTotal),
])
def test_models_cover_the_servers_fields(model, schema) -> None:
    """A field the server adds to its response models must be added here too."""
    ours = {f.name for f in dataclasses.fields(model)}
    assert set(schema.model_fields) - ours == set()


def test_create_takes_every_field_the_server_does() -> None:
    """`ClusterSpec` (create_cluster's keyword arguments) lists ClusterCreate's fields."""
    assert set(ClusterSpec.__annotations__) == set(ClusterCreate.model_fields) - {
        "name", "gpu_type"}


def server_events() -> list[tuple[str, type]]:
    """Every event type of the server's discriminated union, with its data model."""
    out = []
    for member in typing.get_args(typing.get_args(events.EventOut)[0]):
        data = member.model_fields["data"].annotation
        out += [(t, data) for t in typing.get_args(member.model_fields["type"].annotation)]
    return out


EXPECTED_EVENT_CLASS = {
    events.ClusterStatusData: ClusterStatusChanged, events.NodeStatusData: NodeStatusChanged,
    events.NodeOutputData: NodeOutput, events.NoticeData: ClusterNotice,
    events.TornDownData: ClusterTornDown,
}


@pytest.mark.parametrize(("event_type", "data_model"), server_events())
def test_event_types_match_the_servers_union(event_type, data_model) -> None:
    """Each type the server sends parses as its typed event, carrying every data field."""
    example = {"cluster_id": "c1", "at": "2026-11-29T10:00:00Z", "node": 1, "line": "x",
               "message": "m", "status": event_type.split(".")[1]}
    if event_type in ("cluster.notice", "node.output", "cluster.torn_down"):
        example["status"] = "failed"
    event = Event.parse(3, event_type, example)
    cls = EXPECTED_EVENT_CLASS[data_model]
    assert type(event) is cls, event_type
    ours = {f.name for f in dataclasses.fields(cls)}
    assert set(data_model.model_fields) - ours == set()


def test_spend_models_tolerate_a_newer_or_older_server() -> None:
    team = Team.from_json({"name": "alpha", "limits": {
        "max_live_nodes": {"value": 8, "source": "team"},
        "gpu_minutes": {"value": None, "source": "default", "extra": 1}}, "new": True})
    assert team.limits["max_live_nodes"] == Limit(value=8.0, source="team")
    assert team.limits["gpu_minutes"].value is None and team.month_to_date_cost is None
    usage = Usage.from_json({"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z",
                             "group_by": "node", "items": [{"key": "k", "cost": 1}, "junk"]})
    assert usage.start == datetime(2026, 10, 1, tzinfo=UTC) and usage.group_by == "node"
    assert usage.items == [UsageItem(key="k", cost=1.0)] and usage.total == UsageTotal()
    token = StreamToken.from_json({"token": "hgs_secret", "expires_at": "2026-11-29T10:05:00Z",
                                   "events_url": "http://h/clusters/c/events?access_token=x"})
    assert "hgs_secret" not in repr(token) and "access_token" not in repr(token)


# --- retries and errors --------------------------------------------------------------------


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The client's waits between retries, recorded instead of slept."""
    import hangar_client._sync as sync

    slept: list[float] = []

    class Clock:
        @staticmethod
        def sleep(seconds: float) -> None:
            slept.append(seconds)

    monkeypatch.setattr(sync, "time", Clock)
    return slept


def problem(status: int, code: str, headers: dict | None = None, **extra) -> httpx.Response:
    body = {"type": f"https://hangar.dev/problems/{code}", "title": code, "status": status,
            "detail": f"{code} happened", "code": code, **extra}
    return httpx.Response(status, json=body, headers={
        "content-type": "application/problem+json", **(headers or {})})


@respx.mock
def test_create_is_retried_with_one_idempotency_key(sleeps) -> None:
    route = respx.post(f"{URL}/clusters").mock(side_effect=[
        httpx.ConnectError("refused"),
        problem(503, "provider_unavailable", {"Retry-After": "5"}),
        httpx.Response(202, json=CLUSTER),
    ])
    with HangarClient(URL, "t", backoff=0.5, max_backoff=30) as hangar:
        cluster = hangar.create_cluster("train", "RTX 4090", nodes=2, ttl_seconds=None)
    assert cluster.id == "c1" and route.call_count == 3
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
    assert len(keys) == 1, "every retry carries the call's one key"
    assert json.loads(route.calls[0].request.content) == {
        "name": "train", "gpu_type": "RTX 4090", "nodes": 2}
    assert route.calls[0].request.headers["Authorization"] == "Bearer t"
    assert 0.25 <= sleeps[0] <= 0.5, "backoff, with jitter"
    assert sleeps[1] == 5, "Retry-After honoured"


@respx.mock
def test_a_new_call_gets_a_new_key() -> None:
    route = respx.post(f"{URL}/clusters").mock(return_value=httpx.Response(202, json=CLUSTER))
    with HangarClient(URL, "t") as hangar:
        hangar.create_cluster("a", "x")
        hangar.create_cluster("a", "x")
    assert len({c.request.headers["Idempotency-Key"] for c in route.calls}) == 2


@respx.mock
def test_rate_limits_are_retried_but_team_limits_are_not(sleeps) -> None:
    route = respx.get(f"{URL}/clusters/c1").mock(side_effect=[
        problem(429, "rate_limited", {"Retry-After": "120"}),
        httpx.Response(200, json=CLUSTER),
    ])
    with HangarClient(URL, "t", max_backoff=10) as hangar:
        assert hangar.get_cluster("c1").id == "c1"
    assert route.call_count == 2 and sleeps == [10], "Retry-After, capped at max_backoff"

    limited = respx.post(f"{URL}/clusters").mock(return_value=problem(
        429, "limit_live_clusters", limit="max_live_clusters"))
    with HangarClient(URL, "t") as hangar, pytest.raises(RateLimited) as e:
        hangar.create_cluster("a", "x")
    assert limited.call_count == 1, "a quota does not lift by waiting seconds"
    assert e.value.limit == "max_live_clusters" and e.value.detail == (
        "limit_live_clusters happened")


@respx.mock
def test_retries_run_out(sleeps) -> None:
    route = respx.get(f"{URL}/gpu-types").mock(
        return_value=problem(503, "provider_unavailable", {"Retry-After": "1"}))
    with HangarClient(URL, "t", retries=2) as hangar, pytest.raises(ServiceUnavailable) as e:
        hangar.gpu_types()
    assert route.call_count == 3 and e.value.retry_after == 1

    respx.get(f"{URL}/clusters/c1").mock(side_effect=httpx.ConnectError("refused"))
    with HangarClient(URL, "t", retries=1) as hangar, pytest.raises(Unreachable) as u:
        hangar.get_cluster("c1")
    assert isinstance(u.value.__cause__, httpx.ConnectError)


@respx.mock
def test_an_error_that_is_not_a_problem_document() -> None:
    respx.get(f"{URL}/clusters/c1").mock(return_value=httpx.Response(
        418, text="<html>teapot</html>", headers={"x-request-id": "r1"}))
    with HangarClient(URL, "t") as hangar, pytest.raises(Exception) as e:
        hangar.get_cluster("c1")
    assert e.value.status == 418 and e.value.code == "http_418"
    assert e.value.detail == "<html>teapot</html>" and e.value.request_id == "r1"


@respx.mock
def test_a_success_that_is_not_the_api() -> None:
    respx.get(f"{URL}/clusters/c1").mock(return_value=httpx.Response(200, text="<html>"))
    respx.get(f"{URL}/gpu-types").mock(return_value=httpx.Response(200, json={"a": 1}))
    with HangarClient(URL, "t") as hangar:
        with pytest.raises(UnexpectedResponse, match="HANGAR_URL"):
            hangar.get_cluster("c1")
        with pytest.raises(UnexpectedResponse, match="not a JSON list"):
            hangar.gpu_types()


@respx.mock
def test_ids_stay_in_their_path_segment() -> None:
    route = respx.get(f"{URL}/clusters/..%2Fgpu-types%3Fx").mock(
        return_value=httpx.Response(200, json=CLUSTER))
    with HangarClient(URL, "t") as hangar:
        hangar.get_cluster("../gpu-types?x")
    assert route.called


@respx.mock
def test_wait_polls_where_the_stream_is_unavailable(sleeps) -> None:
    """Behind a proxy that answers the stream with JSON, waiting falls back to GET."""
    respx.get(f"{URL}/clusters/c1").mock(side_effect=[
        httpx.Response(200, json={**CLUSTER, "status": "provisioning"}),
        httpx.Response(200, json={**CLUSTER, "status": "bootstrapping"}),
        httpx.Response(200, json={**CLUSTER, "status": "ready"}),
    ])
    stream = respx.get(f"{URL}/clusters/c1/events").mock(
        return_value=httpx.Response(200, json={"items": [], "last_id": 0, "finished": False}))
    with HangarClient(URL, "t") as hangar:
        assert hangar.wait_until_ready("c1", timeout=60).status == "ready"
    assert stream.call_count == 1, "asked once; polled after"
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1], "polls, backing off"


# --- the newer calls -----------------------------------------------------------------------


@respx.mock
def test_update_tells_not_given_from_clear() -> None:
    route = respx.patch(f"{URL}/clusters/c1").mock(return_value=httpx.Response(
        200, json={**CLUSTER, "ttl_seconds": 60}))
    with HangarClient(URL, "t") as hangar:
        assert hangar.update_cluster("c1", ttl_seconds=60).ttl_seconds == 60
        hangar.update_cluster("c1", ttl_seconds=None)
        with pytest.raises(TypeError, match="nothing to change"):
            hangar.update_cluster("c1")
    assert [json.loads(c.request.content) for c in route.calls] == [
        {"ttl_seconds": 60}, {"ttl_seconds": None}]


@respx.mock
def test_usage_follows_pages_and_sends_the_window() -> None:
    page = {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z",
            "group_by": "cluster", "total": {"cost": 3.0, "gpu_hours": 3, "node_hours": 3}}
    route = respx.get(f"{URL}/usage").mock(side_effect=[
        httpx.Response(200, json={**page, "items": [{"key": "a", "cost": 1.0}],
                                  "next": "http://elsewhere:9/usage?group_by=cluster"
                                          "&from=2026-10-01&limit=1&cursor=YQ"}),
        httpx.Response(200, json={**page, "items": [{"key": "b", "cost": 2.0}],
                                  "next": None}),
    ])
    with HangarClient(URL, "t") as hangar:
        usage = hangar.get_usage(date(2026, 10, 1), datetime(2026, 11, 1, tzinfo=UTC),
                                 "cluster", page_size=1)
    assert [i.key for i in usage.items] == ["a", "b"] and usage.total.cost == 3.0
    assert usage.raw["items"] == [{"key": "a", "cost": 1.0}, {"key": "b", "cost": 2.0}]
    assert usage.raw["next"] is None and usage.raw["from"] == page["from"]
    first, second = (c.request.url for c in route.calls)
    assert dict(first.params) == {"group_by": "cluster", "from": "2026-10-01",
                                  "to": "2026-11-01T00:00:00+00:00", "limit": "1"}
    assert second.host == "hangar.test" and second.params["cursor"] == "YQ"


@respx.mock
def test_usage_csv_is_the_apis_text() -> None:
    csv_text = "day,cost_usd,gpu_hours,node_hours\n2026-10-01,1.000000,1.0,1.0\n"
    route = respx.get(f"{URL}/usage").mock(return_value=httpx.Response(
        200, text=csv_text, headers={"content-type": "text/csv; charset=utf-8"}))
    with HangarClient(URL, "t") as hangar:
        assert hangar.usage_csv("2026-10-01") == csv_text
    assert route.calls[0].request.headers["Accept"] == "text/csv"
    respx.get(f"{URL}/usage").mock(return_value=httpx.Response(200, json={}))
    with HangarClient(URL, "t") as hangar, pytest.raises(UnexpectedResponse, match="text/csv"):
        hangar.usage_csv()
