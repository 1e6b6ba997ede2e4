"""HEAD on GET routes, a 405's Allow, and operationIds a generated client can use."""

from __future__ import annotations

from tests.support.stack import VALID, assert_problem


async def test_head_is_get_without_a_body(client_for) -> None:
    alpha = await client_for("alpha")
    cid = (await alpha.post("/clusters", json=VALID)).json()["id"]
    for path in ("/clusters", f"/clusters/{cid}", "/healthz", "/gpu-types", "/team"):
        get, head = await alpha.get(path), await alpha.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers.get("etag") == get.headers.get("etag")
    streamed = await alpha.head(f"/clusters/{cid}/events",
                                headers={"Accept": "text/event-stream"})
    assert streamed.status_code == 200 and streamed.content == b""
    assert streamed.headers["content-type"].startswith("text/event-stream")


async def test_405_lists_every_method_of_the_path(client_for) -> None:
    alpha = await client_for("alpha")
    r = await alpha.request("PUT", "/clusters")
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, HEAD, POST"
    r = await alpha.request("OPTIONS", "/clusters/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, HEAD, PATCH"


def test_operation_ids_are_short_verbs() -> None:
    from app.api.app import create_app

    doc = create_app().openapi()
    ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    assert {"create_cluster", "list_clusters", "get_cluster", "update_cluster",
            "delete_cluster", "cluster_events", "create_stream_token", "list_gpu_types",
            "get_team", "get_usage"} <= ids
    assert all(i.replace("_", "").isalpha() and i.islower() for i in ids), ids
    errors = doc["paths"]["/clusters"]["post"]["responses"]
    examples = {code: r["content"]["application/problem+json"]["example"]["status"]
                for code, r in errors.items() if code.isdigit() and int(code) >= 400}
    assert examples == {code: int(code) for code in examples}  # each its own
    assert "Retry-After" in errors["429"]["headers"] and "Retry-After" in errors["503"]["headers"]
    node = doc["components"]["schemas"]["NodeOut"]["properties"]
    assert "enum" in str(node["status"]) and "no_capacity" in str(node["reason"])
