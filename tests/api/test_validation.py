"""Nothing a caller sends gets a 500: every bad input is a 4xx problem+json that says
what to change, and never quotes the value back."""

from __future__ import annotations

from tests.support.stack import VALID, assert_problem

MiB = 1024 * 1024

BAD_BODIES: list[tuple[str, dict, str]] = [
    ("name missing", {"gpu_type": "4090"}, "name"),
    ("name upper case", {**VALID, "name": "Train"}, "name"),
    ("name too long", {**VALID, "name": "a" * 64}, "name"),
    ("name fullwidth", {**VALID, "name": "ｔｒａｉｎ"}, "name"),
    ("name emoji", {**VALID, "name": "🚀"}, "name"),
    ("name NUL", {**VALID, "name": "a\x00b"}, "name"),
    ("gpu_type NUL", {**VALID, "gpu_type": "RTX 4090\x00"}, "gpu_type"),
    ("gpu_type control", {**VALID, "gpu_type": "RTX\x1b[2J 4090"}, "gpu_type"),
    ("gpu_type empty", {**VALID, "gpu_type": ""}, "gpu_type"),
    ("gpu_type too long", {**VALID, "gpu_type": "x" * 129}, "gpu_type"),
    ("gpu_count negative", {**VALID, "gpu_count": -1}, "gpu_count"),
    ("gpu_count huge", {**VALID, "gpu_count": 10**30}, "gpu_count"),
    ("gpu_count float", {**VALID, "gpu_count": 1.5}, "gpu_count"),
    ("gpu_count string", {**VALID, "gpu_count": "two"}, "gpu_count"),
    ("gpu_count bool-ish", {**VALID, "gpu_count": [1]}, "gpu_count"),
    ("nodes zero", {**VALID, "nodes": 0}, "nodes"),
    ("nodes too many", {**VALID, "nodes": 65}, "nodes"),
    ("cloud_type", {**VALID, "cloud_type": "orbital"}, "cloud_type"),
    ("allocation", {**VALID, "allocation": "free"}, "allocation"),
    ("image with space", {**VALID, "image": "ubuntu latest"}, "image"),
    ("image NUL", {**VALID, "image": "ubuntu\x00"}, "image"),
    ("container disk zero", {**VALID, "container_disk_gb": 0}, "container_disk_gb"),
    ("container disk huge", {**VALID, "container_disk_gb": 2**63}, "container_disk_gb"),
    ("volume below minimum", {**VALID, "volume_gb": 5}, "volume_gb"),
    ("volume negative", {**VALID, "volume_gb": -10}, "volume_gb"),
    ("mount path relative", {**VALID, "volume_mount_path": "workspace"}, "volume_mount_path"),
    ("mount path root", {**VALID, "volume_mount_path": "/"}, "volume_mount_path"),
    ("port out of range", {**VALID, "ports": ["99999/tcp"]}, "ports"),
    ("port protocol", {**VALID, "ports": ["22/sctp"]}, "ports"),
    ("port garbage", {**VALID, "ports": ["ssh"]}, "ports"),
    ("ports too many", {**VALID, "ports": [f"{p}/tcp" for p in range(1000, 1021)]}, "ports"),
    ("env name", {**VALID, "env": {"1BAD": "x"}}, "env"),
    ("env name unicode", {**VALID, "env": {"ÄPFEL": "x"}}, "env"),
    ("env reserved", {**VALID, "env": {"PUBLIC_KEY": "x"}}, "env"),
    ("env reserved prefix", {**VALID, "env": {"HANGAR_NODE_RANK": "3"}}, "env"),
    ("env value NUL", {**VALID, "env": {"A": "x\x00y"}}, "env"),
    ("env too big", {**VALID, "env": {"BIG": "x" * 33_000}}, "env"),
    ("env too many", {**VALID, "env": {f"V{i}": "x" for i in range(101)}}, "env"),
    ("env not strings", {**VALID, "env": {"A": 1}}, "env.A"),
    ("data center pattern", {**VALID, "data_center_ids": ["EU RO 1"]}, "data_center_ids.0"),
    ("setup too big", {**VALID, "setup": "x" * (64 * 1024 + 1)}, "setup"),
    ("setup NUL", {**VALID, "setup": "echo \x00"}, "setup"),
    ("ttl zero", {**VALID, "ttl_seconds": 0}, "ttl_seconds"),
    ("ttl too long", {**VALID, "ttl_seconds": 10**20}, "ttl_seconds"),
    ("cost zero", {**VALID, "max_hourly_cost": 0}, "max_hourly_cost"),
    ("cost negative", {**VALID, "max_hourly_cost": -1}, "max_hourly_cost"),
    ("cost huge", {**VALID, "max_hourly_cost": 1e308}, "max_hourly_cost"),
    ("unknown field", {**VALID, "gpu": "4090"}, "gpu"),
]


async def test_bad_field_is_422_naming_the_field(client_for) -> None:
    # One app for every case (a loop, not parametrize): starting servers is the slow part.
    alpha = await client_for("alpha")
    for case, body, field in BAD_BODIES:
        r = await alpha.post("/clusters", json=body)
        problem = assert_problem(r, 422, "invalid_request")
        assert field in [e["field"] for e in problem["errors"]], (case, problem)
        assert all(e["message"] for e in problem["errors"]), case
        assert field in problem["detail"], case


RAW_BODIES: list[tuple[str, bytes, str, int, str]] = [
    # (case, body, content type, status, code)
    ("malformed JSON", b'{"name": "x",', "application/json", 422, "invalid_request"),
    ("JSON array", b"[1, 2]", "application/json", 422, "invalid_request"),
    ("JSON string", b'"hello"', "application/json", 422, "invalid_request"),
    ("JSON null", b"null", "application/json", 422, "invalid_request"),
    ("empty body", b"", "application/json", 422, "invalid_request"),
    ("lone surrogate", b'{"name": "a", "gpu_type": "\\ud800"}', "application/json", 422,
     "invalid_request"),
    ("NaN", b'{"name": "a", "gpu_type": "4090", "max_hourly_cost": NaN}', "application/json",
     422, "invalid_request"),
    ("Infinity", b'{"name": "a", "gpu_type": "4090", "gpu_count": 1e400}', "application/json",
     422, "invalid_request"),
    ("5000-digit integer", b'{"name": "a", "gpu_type": "4090", "nodes": ' + b"9" * 5000 + b"}",
     "application/json", 400, "bad_request"),
    ("deeply nested", b'{"env": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json",
     400, "bad_request"),
    ("duplicate keys", b'{"name": "a", "name": "b", "gpu_type": "no such gpu"}',
     "application/json", 422, "unknown_gpu_type"),
    ("not UTF-8", b'{"name": "\xff\xfe"}', "application/json", 400, "bad_request"),
    ("text/plain", b'{"name": "a", "gpu_type": "4090"}', "text/plain", 415,
     "unsupported_media_type"),
    ("form", b"name=a&gpu_type=4090", "application/x-www-form-urlencoded", 415,
     "unsupported_media_type"),
    ("no content type", b'{"name": "a", "gpu_type": "4090"}', "", 415, "unsupported_media_type"),
    ("garbage content type", b'{"name": "a"}', ";;;", 415, "unsupported_media_type"),
]


async def test_unreadable_body_is_a_problem(client_for) -> None:
    alpha = await client_for("alpha")
    for case, raw, ctype, status, code in RAW_BODIES:
        headers = {"Content-Type": ctype} if ctype else {}
        r = await alpha.post("/clusters", content=raw, headers=headers)
        try:
            problem = assert_problem(r, status, code)
        except AssertionError as exc:
            raise AssertionError(case) from exc
        if case == "malformed JSON":
            assert "not valid JSON" in problem["detail"]
        if case == "empty body":
            assert "body is required" in problem["detail"]


async def test_huge_bodies_are_413(client_for) -> None:
    alpha = await client_for("alpha")
    big = b'{"name": "a", "setup": "' + b"x" * (2 * MiB) + b'"}'
    r = await alpha.post("/clusters", content=big, headers={"Content-Type": "application/json"})
    assert "larger than 1048576 bytes" in assert_problem(r, 413, "body_too_large")["detail"]

    async def chunks():  # no Content-Length: the limit counts what arrives
        for _ in range(40):
            yield b"x" * 65536

    r = await alpha.post("/clusters", content=chunks(),
                         headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "body_too_large")
    # Just under the limit is read (and refused for what it says, not for its size).
    ok_size = b'{"name": "a", "gpu_type": "4090", "setup": "' + b"x" * (MiB - 100) + b'"}'
    r = await alpha.post("/clusters", content=ok_size, headers={"Content-Type": "application/json"})
    assert_problem(r, 422, "invalid_request")


async def test_non_uuid_ids_are_422(client_for) -> None:
    alpha = await client_for("alpha")
    for path in ("/clusters/not-a-uuid", "/clusters/123", "/clusters/%00",
                 "/clusters/%F0%9F%9A%80", "/clusters/00000000-0000-0000-0000-00000000000g",
                 "/clusters/not-a-uuid/events"):
        methods = ("GET", "DELETE") if not path.endswith("events") else ("GET",)
        for method in methods:
            body = assert_problem(await alpha.request(method, path), 422, "invalid_request")
            assert body["errors"][0]["field"] == "cluster_id", path


async def test_bad_event_parameters_are_4xx(client_for) -> None:
    alpha = await client_for("alpha")
    cid = (await alpha.post("/clusters", json=VALID)).json()["id"]
    for params, headers in (
        ({"after": -1}, {}),
        ({"after": "x"}, {}),
        ({"after": 10**30}, {}),
        ({"limit": 0}, {}),
        ({}, {"Last-Event-ID": "abc"}),
        ({}, {"Last-Event-ID": "-5"}),
        ({}, {"Last-Event-ID": "9" * 40}),
    ):
        r = await alpha.get(f"/clusters/{cid}/events", params=params, headers=headers)
        assert_problem(r, 422)


async def test_wrong_method_and_unknown_route(client_for) -> None:
    alpha = await client_for("alpha")
    r = await alpha.put("/clusters", json=VALID)
    assert_problem(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]
    assert_problem(await alpha.get("/clusterz"), 404, "not_found")


async def test_errors_never_quote_values_or_credentials(client_for) -> None:
    alpha = await client_for("alpha")
    secret = "hunter2-do-not-echo"
    for body in (
        {**VALID, "env": {"bad name": secret}},
        {**VALID, "env": {"OK": secret}, "nodes": secret},
        {**VALID, "image": f"{secret} with spaces"},
        {**VALID, "setup": secret, "extra": secret},
    ):
        r = await alpha.post("/clusters", json=body, headers={"Idempotency-Key": "bad key"})
        assert r.status_code == 422
        assert secret not in r.text and alpha.token not in r.text
        assert '"input"' not in r.text
