"""The webhook routes: refused URLs, filters, another team's webhook, the secret shown once
and never again (not in responses, not in logs)."""

from __future__ import annotations

import base64
import logging
import uuid

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from tests.support.events import append, make_cluster
from tests.support.stack import assert_problem, serve_app, team_client
from tests.webhooks.conftest import create_webhook, new_id, wait_until


@pytest.fixture
async def strict(wh_settings, db):
    """The API with the default policy (no private addresses, https only)."""
    from app.api.app import create_app

    served = await serve_app(create_app(wh_settings.model_copy(
        update=dict(webhook_allow_private=False))))
    client = await team_client(db, served.url, "alpha")
    yield client
    await client.aclose()
    await served.stop()


@pytest.mark.parametrize(("url", "why"), [
    ("http://hooks.example.com/x", "plain http is refused"),
    ("ftp://hooks.example.com/x", "must start with https://"),
    ("https://127.0.0.1/x", "127.0.0.1 is a loopback address"),
    ("https://localhost:8443/x", "is a loopback address"),
    ("https://[::1]/x", "::1 is a loopback address"),
    ("https://10.1.2.3/x", "10.1.2.3 is a private address"),
    ("https://192.168.0.10/x", "is a private address"),
    ("https://[fd12::1]/x", "is a private address"),
    ("https://100.64.0.1/x", "is a private address"),
    ("https://169.254.169.254/latest/meta-data", "cloud metadata address"),
    ("https://169.254.10.10/x", "link-local"),
    ("https://[fe80::1]/x", "link-local"),
    ("https://[fd00:ec2::254]/x", "cloud metadata address"),
    ("https://100.100.100.200/x", "cloud metadata address"),
    ("https://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
    ("https://[::ffff:127.0.0.1]/x", "loopback"),
    ("https://0.0.0.0/x", "not a unicast address"),
    ("https://user:pw@hooks.example.com/x", "credentials in the URL are refused"),
    ("https://hooks.example.com/x#frag", "fragment"),
    ("https:///x", "no host"),
    ("https://no-such-host.invalid/x", "does not resolve"),
])
async def test_refused_urls(strict, url: str, why: str) -> None:
    r = await strict.post("/webhooks", json={"url": url})
    body = assert_problem(r, 422, "webhook_url_refused")
    assert why in body["detail"], body["detail"]
    assert (await strict.get("/webhooks")).json()["items"] == []


@pytest.mark.parametrize("url", [
    "https://169.254.169.254/latest/meta-data", "https://[fe80::1]/x",
    "https://metadata.google.internal/", "https://100.100.100.200/",
])
async def test_metadata_and_link_local_refused_even_when_private_is_allowed(clients,
                                                                            url: str) -> None:
    r = await clients["alpha"].post("/webhooks", json={"url": url})
    assert_problem(r, 422, "webhook_url_refused")


async def test_private_allowed_by_the_setting(clients) -> None:
    hook = await create_webhook(clients["alpha"], "http://127.0.0.1:9/hook")
    assert hook["url"] == "http://127.0.0.1:9/hook"


async def test_enabling_again_checks_the_url_again(clients, strict, db) -> None:
    """Allowed when it was created; refused by the policy in force when it is enabled
    again (it stays disabled)."""
    hook = await create_webhook(clients["alpha"], "http://127.0.0.1:9/hook")
    async with db() as session, session.begin():
        await session.execute(text(
            "UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = 'test' "
            "WHERE id = :id"), {"id": uuid.UUID(hook["id"])})
    r = await strict.post(f"/webhooks/{hook['id']}/enable")
    assert "plain http is refused" in assert_problem(r, 422, "webhook_url_refused")["detail"]
    assert (await strict.get(f"/webhooks/{hook['id']}")).json()["status"] == "disabled"
    r = await clients["alpha"].post(f"/webhooks/{hook['id']}/enable")
    assert r.status_code == 200 and r.json()["status"] == "enabled"


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "https://x.example", "events": ["cluster.redy"]}, "events"),
    ({"url": "https://x.example", "events": ["nodes.*"]}, "events"),
    ({"url": "https://x.example", "events": "cluster.*"}, "events"),
    ({"url": "https://x.example", "events": ["*"] * 51}, "events"),
    ({"url": ""}, "url"),
    ({"url": "https://x.example/" + "a" * 2100}, "url"),
    ({}, "url"),
    ({"url": "https://x.example", "secret": "mine"}, "secret"),
])
async def test_invalid_requests(clients, body: dict, field: str) -> None:
    r = await clients["alpha"].post("/webhooks", json=body)
    problem = assert_problem(r, 422, "invalid_request")
    assert field in {e["field"].split(".")[0] for e in problem["errors"]}, problem


async def test_unknown_type_names_the_accepted_ones(clients) -> None:
    r = await clients["alpha"].post("/webhooks", json={"url": "https://x.example",
                                                       "events": ["node.redy"]})
    detail = assert_problem(r, 422)["detail"]
    assert "'node.redy' is not an event type" in detail and "node.ready" in detail


async def test_another_teams_webhook_is_a_404(clients, receiver) -> None:
    alpha, beta = clients["alpha"], clients["beta"]
    hook = await create_webhook(alpha, receiver.url)
    path = f"/webhooks/{hook['id']}"
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/deliveries"),
                           ("POST", "/test"), ("POST", "/enable")):
        assert_problem(await beta.request(method, path + suffix), 404, "not_found")
    assert (await beta.get("/webhooks")).json()["items"] == []
    assert receiver.deliveries == [], "beta's test ping was not sent"
    assert (await alpha.get(path)).status_code == 200
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/deliveries")):
        assert_problem(await alpha.request(method, f"/webhooks/{new_id()}{suffix}"), 404)
    assert_problem(await alpha.get("/webhooks/not-a-uuid"), 422)
    assert (await alpha.delete(path)).status_code == 204
    assert_problem(await alpha.get(path), 404)


async def test_the_secret_is_shown_once_and_never_logged(clients, receiver, worker,
                                                         dispatcher, db, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    alpha = clients["alpha"]
    r = await alpha.post("/webhooks", json={"url": receiver.url, "events": ["cluster.*"]})
    assert r.status_code == 201 and r.headers["Location"] == f"/webhooks/{r.json()['id']}"
    hook = r.json()
    secret = hook["secret"]
    raw = secret.removeprefix("whsec_")
    assert len(base64.b64decode(raw)) >= 24

    cid = await make_cluster(db, alpha.team_id)
    await append(db, cid, 2, dispatcher)
    await alpha.post(f"/webhooks/{hook['id']}/test")
    await wait_until(lambda: len(receiver.deliveries) >= 2)
    Webhook(secret).verify(receiver.deliveries[0].body, receiver.deliveries[0].headers)

    later = [await alpha.get(f"/webhooks/{hook['id']}"), await alpha.get("/webhooks"),
             await alpha.get(f"/webhooks/{hook['id']}/deliveries"),
             await alpha.post(f"/webhooks/{hook['id']}/test")]
    for response in later:
        assert response.status_code == 200
        assert raw not in response.text and "whsec_" not in response.text
    assert set((await alpha.get(f"/webhooks/{hook['id']}")).json()) == {
        "id", "url", "events", "status", "created_at", "failing_since", "last_success_at",
        "disabled_at", "disabled_reason"}
    logged = "\n".join(f"{rec.getMessage()} {rec.args!r} {rec.__dict__!r}"
                       for rec in caplog.records)
    assert caplog.records, "the run logged something (the check is not vacuous)"
    assert raw not in logged and "whsec_" not in logged
    async with db() as session:
        from sqlalchemy import text

        stored = (await session.execute(text("SELECT secret_enc FROM webhook_endpoints"))).scalar()
    assert raw.encode() not in stored and b"whsec_" not in stored, "stored encrypted"
