"""The client against the vendored v2 OpenAPI document itself.

- every request body the client can send validates against the spec's request schema;
- every example the spec gives for the response schemas we read parses with our models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from app.providers.base import PodSpec
from app.providers.runpod import types as v2
from app.providers.runpod.mapping import create_body, to_gpu_type, to_pod

SPEC_URI = "urn:runpod:openapi-v2"

MODELS: dict[str, type[BaseModel]] = {
    "Pod": v2.Pod,
    "ListPodsResponse": v2.ListPodsResponse,
    "GpuType": v2.GpuType,
    "ListGpuTypesResponse": v2.ListGpuTypesResponse,
    "ErrorResponse": v2.ErrorResponse,
}


@pytest.fixture(scope="module")
def validator_for(spec):
    registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))

    def make(schema_name: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}, registry=registry
        )

    return make


def _errors(validator: Draft202012Validator, body: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]


# --- request bodies ----------------------------------------------------------------------

IMAGE = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
SPECS = {
    "defaults (20 GB volume)": PodSpec(
        name="hangar-c1-n0", image=IMAGE, gpu_type_id="NVIDIA GeForce RTX 4090", gpu_count=1
    ),
    "no volume": PodSpec(
        name="n", image=IMAGE, gpu_type_id="NVIDIA H100 80GB HBM3", gpu_count=8, volume_gb=0
    ),
    "minimum volume": PodSpec(
        name="n",
        image=IMAGE,
        gpu_type_id="NVIDIA L4",
        gpu_count=1,
        volume_gb=10,
        volume_mount_path="/data",
    ),
    "data centers": PodSpec(
        name="n",
        image=IMAGE,
        gpu_type_id="NVIDIA L4",
        gpu_count=2,
        data_center_ids=("US-KS-2", "EU-RO-1"),
    ),
    "community cloud": PodSpec(
        name="n",
        image=IMAGE,
        gpu_type_id="NVIDIA GeForce RTX 4090",
        gpu_count=1,
        cloud_type="community",
    ),
    "env and ports": PodSpec(
        name="n",
        image=IMAGE,
        gpu_type_id="NVIDIA GeForce RTX 4090",
        gpu_count=1,
        env={"PUBLIC_KEY": "ssh-ed25519 AAAA hangar", "HANGAR_NODE": "0"},
        ports=("8888/http", "22/tcp"),
        container_disk_gb=200,
    ),
    "no ports given": PodSpec(
        name="n", image=IMAGE, gpu_type_id="NVIDIA L4", gpu_count=1, ports=()
    ),
}


@pytest.mark.parametrize("label", list(SPECS))
async def test_create_bodies_validate(provider, runpod_api, pod_json, validator_for, label):
    route = runpod_api.post("/pods").respond(201, json=pod_json())
    await provider.create_pod(SPECS[label])
    body = json.loads(route.calls.last.request.content)
    assert _errors(validator_for("CreatePodRequest"), body) == []
    assert "22/tcp" in body["ports"]
    assert body["gpu"]["count"] == SPECS[label].gpu_count


async def test_action_bodies_validate(provider, runpod_api, problem, validator_for):
    route = runpod_api.post("/pods/p1/action").respond(204)
    runpod_api.delete("/pods/p1").mock(return_value=problem(409, "cluster member"))
    await provider.terminate_pod("p1")
    body = json.loads(route.calls.last.request.content)
    assert body == {"action": "terminate"}
    assert _errors(validator_for("PodActionRequest"), body) == []


def test_spec_request_examples_validate(spec, validator_for):
    content = spec["paths"]["/v2/pods"]["post"]["requestBody"]["content"]["application/json"]
    for example in content["examples"].values():
        assert _errors(validator_for("CreatePodRequest"), example["value"]) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"interruptible": True}, "v2 has no spot"),
        ({"startSsh": True, "interruptible": False}, "interruptible is unknown even when false"),
        ({"imageName": IMAGE}, "v1 name"),
        ({"gpuTypeIds": ["NVIDIA L4"]}, "v1 name"),
        ({"containerDiskInGb": 50}, "v1 name"),
        ({"mounts": {"persistent": {"size": 5, "path": "/workspace"}}}, "below the 10 GB floor"),
        ({"gpu": {"id": "NVIDIA L4", "count": 0}}, "count below 1"),
        ({"cloud": "SPOT"}, "not a cloud"),
    ],
)
def test_validator_rejects_what_v2_rejects(validator_for, change, why):
    body = create_body(SPECS["defaults (20 GB volume)"])
    assert _errors(validator_for("CreatePodRequest"), body) == []
    body.update(change)
    assert _errors(validator_for("CreatePodRequest"), body), why


def test_action_validator_is_live(validator_for):
    assert _errors(validator_for("PodActionRequest"), {"action": "reset"})
    assert _errors(validator_for("PodActionRequest"), {"action": "stop", "force": True})


def test_catalog_query_matches_spec_parameters(spec):
    params = {
        p["$ref"].rsplit("/", 1)[-1] for p in spec["paths"]["/v2/catalog/gpus"]["get"]["parameters"]
    }
    assert {"CatalogIncludeParam", "GpuProductFilter"} <= params
    schemas = spec["components"]["schemas"]
    assert "AVAILABILITY" in schemas["CatalogInclude"]["enum"]
    assert "POD" in schemas["Product"]["enum"]


# --- response examples ----------------------------------------------------------------------


def _resolve(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _example_values(holder: dict) -> Iterator[tuple[str, Any]]:
    if "example" in holder:
        yield "example", holder["example"]
    examples = holder.get("examples")
    if isinstance(examples, dict):  # OpenAPI: name -> {value}
        for name, ex in examples.items():
            if isinstance(ex, dict) and "value" in ex:
                yield name, ex["value"]
    elif isinstance(examples, list):  # JSON Schema: a list of values
        for i, ex in enumerate(examples):
            yield str(i), ex


def spec_examples(spec: dict) -> list[tuple[str, str, Any]]:
    """(schema name, where, value) for every whole-object example of the schemas we model."""
    found: list[tuple[str, str, Any]] = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for code, response in op["responses"].items():
                response = _resolve(spec, response)
                for media, content in response.get("content", {}).items():
                    name = content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                    if name in MODELS:
                        for ex_name, value in _example_values(content):
                            found.append((name, f"{method} {path} {code} {media} {ex_name}", value))
    for name, response in spec["components"].get("responses", {}).items():
        for media, content in response.get("content", {}).items():
            schema = content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            if schema in MODELS:
                for ex_name, value in _example_values(content):
                    found.append((schema, f"components.responses.{name} {media} {ex_name}", value))
    for name in MODELS:
        for ex_name, value in _example_values(spec["components"]["schemas"][name]):
            found.append((name, f"components.schemas.{name} {ex_name}", value))
    return found


def test_the_walker_finds_the_examples(spec):
    counts: dict[str, int] = {}
    for name, _, _ in spec_examples(spec):
        counts[name] = counts.get(name, 0) + 1
    # createPod 201, getPod 200, updatePod 200, podAction 200
    assert counts.get("Pod", 0) >= 4
    assert counts.get("ListPodsResponse", 0) >= 1
    assert counts.get("GpuType", 0) >= 1
    assert counts.get("ListGpuTypesResponse", 0) >= 1
    assert counts.get("ErrorResponse", 0) >= 7  # one per components.responses entry


@pytest.fixture(scope="module")
def all_examples(spec):
    return spec_examples(spec)


def test_every_spec_example_parses(all_examples, validator_for):
    assert all_examples
    for name, where, value in all_examples:
        # the example agrees with the spec's own schema (the walker found the right thing)
        assert _errors(validator_for(name), value) == [], where
        parsed = MODELS[name].model_validate(value)
        if isinstance(parsed, v2.Pod):
            pod = to_pod(parsed)
            assert pod.id == value["id"] and pod.name == value["name"], where
            assert pod.gpu_type_id == value["gpu"]["id"]
        elif isinstance(parsed, v2.ListPodsResponse):
            assert [to_pod(p).id for p in parsed.pods] == [p["id"] for p in value["pods"]]
            assert parsed.pagination is None
        elif isinstance(parsed, v2.GpuType):
            t = to_gpu_type(parsed)
            assert t.id == value["id"] and t.price_secure == value["price"]["secure"]
        elif isinstance(parsed, v2.ListGpuTypesResponse):
            assert [to_gpu_type(g).id for g in parsed.gpus] == [g["id"] for g in value["gpus"]]
        elif isinstance(parsed, v2.ErrorResponse):
            assert parsed.status == value["status"] and parsed.detail == value["detail"]


def test_spec_examples_map_ssh(all_examples):
    pods = {
        where: to_pod(v2.Pod.model_validate(v)) for name, where, v in all_examples if name == "Pod"
    }
    created = next(p for w, p in pods.items() if w.startswith("post /v2/pods 201"))
    running = next(p for w, p in pods.items() if w.startswith("get /v2/pods/{id} 200"))
    assert created.ssh_host is None and created.status.value == "PROVISIONING"
    assert (running.ssh_host, running.ssh_port) == ("195.26.233.3", 34446)


# --- tolerance beyond the examples -----------------------------------------------------------


def _pod(spec_pod: dict, **changes: Any) -> v2.Pod:
    data = dict(spec_pod)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return v2.Pod.model_validate(data)


@pytest.mark.parametrize(
    "runtime",
    [
        None,
        {},
        {"uptime": 5},
        {"ports": None},
        {"ports": []},
        {"ports": [{"private": 22, "public": None, "type": "tcp", "ip": None}]},
    ],
)
def test_runtime_shapes_without_ssh(pod_json, runtime):
    pod = to_pod(_pod(pod_json(), runtime=runtime, ssh={"proxy": None, "direct": None}))
    assert (pod.ssh_host, pod.ssh_port) == (None, None)
    assert not pod.ssh_ready


def test_runtime_ports_used_when_direct_is_null(pod_json):
    runtime = {
        "ports": [
            {"private": 8888, "public": 40000, "type": "http", "ip": "10.0.0.1"},
            {"private": 22, "public": 40022, "type": "tcp", "ip": "203.0.113.7"},
        ]
    }
    pod = to_pod(_pod(pod_json(), runtime=runtime, ssh={"proxy": None, "direct": None}))
    assert (pod.ssh_host, pod.ssh_port) == ("203.0.113.7", 40022)


def test_missing_optional_blocks(pod_json):
    raw = _pod(
        pod_json(), ssh=..., runtime=..., gpu=..., startedAt=..., dataCenterId=None, cost=None
    )
    pod = to_pod(raw)
    assert pod.gpu_count == 0 and pod.gpu_type_id is None  # a CPU pod
    assert pod.ssh_host is None and pod.started_at is None and pod.cost_per_hour == 0.0


def test_unknown_fields_and_status(pod_json):
    raw = _pod(pod_json(), status="HIBERNATING", brandNewField={"x": 1}, entrypoint=["bash"])
    assert to_pod(raw).status.value == "PROVISIONING"


def test_env_is_not_kept(pod_json):
    raw = _pod(pod_json(), env={"PUBLIC_KEY": "ssh-ed25519 SECRET"})
    assert "SECRET" not in repr(raw) and "SECRET" not in raw.model_dump_json()


def test_list_with_pagination_parses(pod_json):
    parsed = v2.ListPodsResponse.model_validate(
        {"pods": [pod_json()], "pagination": {"nextCursor": "abc", "hasNextPage": True}}
    )
    assert parsed.pagination is not None
    assert (parsed.pagination.next_cursor, parsed.pagination.has_next_page) == ("abc", True)


def test_error_response_variants():
    assert v2.ErrorResponse.model_validate(
        {"title": "x", "status": 422, "detail": "d", "errors": ["a", "b"]}
    ).errors == ["a", "b"]
    assert (
        v2.ErrorResponse.model_validate({"title": "x", "status": 400, "detail": None}).detail == ""
    )
    assert v2.ErrorResponse.model_validate({"status": 500}).title == ""


def test_gpu_type_nulls():
    t = v2.GpuType.model_validate(
        {
            "id": "X",
            "name": "X",
            "price": None,
            "maxCount": None,
            "dataCenters": None,
            "memory": None,
        }
    )
    mapped = to_gpu_type(t)
    assert (
        mapped.price_secure is None
        and mapped.data_centers == ()
        and mapped.max_count_secure is None
    )


def test_http_example_in_docs_matches_our_body():
    """The hand-built body in V2-NOTES §10 is what we send for that spec."""
    spec = PodSpec(
        name="hangar-c1-n0",
        image=IMAGE,
        gpu_type_id="NVIDIA GeForce RTX 4090",
        gpu_count=1,
        data_center_ids=("US-KS-2",),
        env={"PUBLIC_KEY": "ssh-ed25519 AAAA... hangar"},
    )
    assert create_body(spec) == {
        "name": "hangar-c1-n0",
        "image": IMAGE,
        "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1},
        "cloud": "SECURE",
        "dataCenterIds": ["US-KS-2"],
        "disk": 50,
        "mounts": {"persistent": {"size": 20, "path": "/workspace"}},
        "ports": ["22/tcp"],
        "env": {"PUBLIC_KEY": "ssh-ed25519 AAAA... hangar"},
    }


@pytest.mark.parametrize(
    ("value", "year"),
    [
        ("2026-06-01T12:00:00Z", 2026),
        ("2026-06-01 12:00:00.123 +0000 UTC", 2026),
        ("garbage", None),
        ("", None),
    ],
)
def test_dates_are_read_leniently(pod_json, value, year):
    pod = _pod(pod_json(), createdAt=value)
    assert (pod.created_at.year if pod.created_at else None) == year


def test_gpu_count_null_reads_as_one(pod_json):
    assert to_pod(_pod(pod_json(), gpu={"id": "NVIDIA L4", "count": None})).gpu_count == 1
