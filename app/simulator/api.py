"""The `/v2` routes: pods, pod actions, Instant Clusters, network volumes (read only), GPU
catalog, data centers, account SSH keys.

Handlers build JSON in the spec's exact shapes by hand (no response models) and raise
`ApiError` for problem+json answers. Auth, rate limiting and HTTP faults happen earlier,
in `middleware.py`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from app.simulator.catalog import CLOUDS
from app.simulator.problems import ApiError, from_error, problem_response
from app.simulator.spec import validation_errors

if TYPE_CHECKING:
    from app.simulator.clusters import SimCluster
    from app.simulator.pods import SimPod
    from app.simulator.server import Simulator

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
_CUDA_RE = re.compile(r"^\d+\.\d+$")
_MIN_CUDA_RE = re.compile(r"^\d+(\.\d+)?$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_VALIDATION = "Request validation failed."


# --- helpers ------------------------------------------------------------------------------


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, _VALIDATION, errors=[f"$: body is not valid JSON ({exc})"]) from exc


def _validate(schema: str, body: Any) -> None:
    errors = validation_errors(schema, body)
    if errors:
        raise ApiError(422, _VALIDATION, errors=errors)


def encode_cursor(seq: int) -> str:
    """Opaque cursor: the listing continues with pods older than `seq`."""
    raw = json.dumps({"v": 1, "before": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        before = data["before"]
        if data.get("v") != 1 or not isinstance(before, int) or isinstance(before, bool):
            raise ValueError
        return before
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid cursor", errors=["cursor: invalid cursor"]) from exc


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _enum_list(name: str, value: str | None, allowed: tuple[str, ...]) -> list[str]:
    items = _csv(value)
    bad = [v for v in items if v not in allowed]
    if bad:
        raise ApiError(
            422,
            _VALIDATION,
            errors=[f"{name}: {v!r} is not one of {list(allowed)}" for v in bad],
        )
    return items


def _bool_param(name: str, value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ApiError(422, _VALIDATION, errors=[f"{name}: {value!r} is not a boolean"])


# --- catalog query parameters ----------------------------------------------------------------


def _gpu_query(sim: Simulator, request: Request) -> dict[str, Any]:
    """Validate the catalog GPU query (include/product/count/cloud/...) per the spec rules."""
    q = request.query_params
    include = _enum_list("include", q.get("include"), ("AVAILABILITY",))
    products = _enum_list("product", q.get("product"), ("POD", "CLUSTER", "SERVERLESS"))
    filters = [
        k
        for k in ("count", "cloud", "countryCodes", "cudaVersions", "minCudaVersion")
        if q.get(k) is not None
    ]
    if include and not products:
        raise ApiError(400, "product is required when include=AVAILABILITY")
    if products and not include:
        raise ApiError(400, "product is only valid with include=AVAILABILITY")
    if filters and not include:
        raise ApiError(400, f"{', '.join(filters)} only valid with include=AVAILABILITY")
    if q.get("cudaVersions") is not None and q.get("minCudaVersion") is not None:
        raise ApiError(400, "cudaVersions and minCudaVersion are mutually exclusive")
    count = 1
    if q.get("count") is not None:
        try:
            count = int(q["count"])
        except ValueError:
            count = 0
        if count < 1:
            raise ApiError(422, _VALIDATION, errors=[f"count: {q['count']!r} must be >= 1"])
    cloud = (_enum_list("cloud", q.get("cloud"), CLOUDS) or ["SECURE"])[0]
    countries = _csv(q.get("countryCodes"))
    bad = [c for c in countries if not _COUNTRY_RE.match(c)]
    cuda_versions = _csv(q.get("cudaVersions"))
    bad += [v for v in cuda_versions if not _CUDA_RE.match(v)]
    min_cuda = q.get("minCudaVersion")
    if min_cuda is not None and not _MIN_CUDA_RE.match(min_cuda):
        bad.append(min_cuda)
    if bad:
        raise ApiError(422, _VALIDATION, errors=[f"malformed filter value {v!r}" for v in bad])
    if min_cuda and "." not in min_cuda:
        min_cuda = f"{min_cuda}.0"  # a bare major means any release of it
    return {
        "include_availability": bool(include),
        "count": count,
        "cloud": cloud,
        "countries": set(countries) or None,
        "cuda_versions": cuda_versions or None,
        "min_cuda": min_cuda,
        "blocked": partial(sim.faults.catalog_blocked, product=products[0] if products else None),
    }


def _refuse_member(pod: SimPod) -> None:
    """Cluster members "cannot be modified or deleted via the pod endpoints" [S Pod.cluster]."""
    if pod.membership is not None:
        raise ApiError(
            409,
            f"pod {pod.id} belongs to cluster {pod.membership.cluster_id}; "
            "delete the cluster via DELETE /v2/clusters/{id}",
        )


# --- the app ---------------------------------------------------------------------------------


def create_app(sim: Simulator) -> FastAPI:
    """The FastAPI app with `/v2` routes, admin routes and problem+json error handlers."""
    from app.simulator.admin import create_admin_router

    app = FastAPI(title="RunPod v2 simulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(create_v2_router(sim))
    app.include_router(create_admin_router(sim))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = {
            404: "resource not found",
            405: "The requested method is not allowed for this path.",
        }.get(exc.status_code, str(exc.detail))
        return problem_response(exc.status_code, detail, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A simulator bug still answers in the API's error format (and gets logged).
        log.exception("simulator handler failed")
        return problem_response(500, f"simulator error: {type(exc).__name__}: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return problem_response(422, _VALIDATION, errors=errors)

    return app


def create_v2_router(sim: Simulator) -> APIRouter:
    """Routes of the RunPod v2 API the simulator implements."""
    router = APIRouter(prefix="/v2")
    pods = sim.pods

    @router.post("/pods", status_code=201)
    async def create_pod(request: Request) -> JSONResponse:
        body = await _json_body(request)
        _validate("CreatePodRequest", body)
        pod = pods.create(body)
        request.scope.setdefault("sim", {})["pod_id"] = pod.id
        return JSONResponse(pods.to_json(pod), status_code=201)

    @router.get("/pods")
    async def list_pods(request: Request) -> JSONResponse:
        q = request.query_params
        # Cluster members are left out unless asked for [S listPods].
        with_members = _bool_param("includeClusterPods", q.get("includeClusterPods"))
        limit = MAX_LIMIT
        if q.get("limit") is not None:
            try:
                limit = int(q["limit"])
            except ValueError:
                limit = 0
            if not 1 <= limit <= MAX_LIMIT:
                raise ApiError(
                    422, _VALIDATION, errors=[f"limit: must be an integer from 1 to {MAX_LIMIT}"]
                )
        candidates = pods.alive()  # newest first
        if not with_members:
            candidates = [p for p in candidates if p.membership is None]
        if q.get("cursor"):
            before = decode_cursor(q["cursor"])
            candidates = [p for p in candidates if p.seq < before]
        page = candidates[:limit]
        await pods.refresh_all(page)
        # A pod may have been terminated while others were refreshed.
        page = [p for p in page if p.alive]
        has_next = len(candidates) > limit
        return JSONResponse(
            {
                "pods": [pods.to_json(p) for p in page],
                "pagination": {
                    "nextCursor": encode_cursor(page[-1].seq) if has_next and page else None,
                    "hasNextPage": has_next,
                },
            }
        )

    @router.get("/pods/{pod_id}")
    async def get_pod(pod_id: str) -> JSONResponse:
        pod = pods.get(pod_id)
        if pod is None:
            raise ApiError(404, "pod not found")
        await pods.refresh(pod)
        if not pod.alive:
            raise ApiError(404, "pod not found")
        return JSONResponse(pods.to_json(pod))

    @router.delete("/pods/{pod_id}", status_code=204)
    async def delete_pod(pod_id: str) -> Response:
        pod = pods.get(pod_id)
        if pod is None:
            raise ApiError(404, "pod not found")
        _refuse_member(pod)
        await pods.terminate(pod)
        return Response(status_code=204)

    @router.post("/pods/{pod_id}/action")
    async def pod_action(pod_id: str, request: Request) -> Response:
        body = await _json_body(request)
        _validate("PodActionRequest", body)
        pod = pods.get(pod_id)
        if pod is None:
            raise ApiError(404, "pod not found")
        _refuse_member(pod)
        result = await pods.action(pod, body["action"])
        if result is None:
            return Response(status_code=204)
        return JSONResponse(pods.to_json(result))

    @router.get("/catalog/gpus")
    async def list_gpus(request: Request) -> JSONResponse:
        opts = _gpu_query(sim, request)
        gpus = []
        for gpu in sim.catalog.gpus():
            item = sim.catalog.gpu_json(gpu, **opts)
            # With countryCodes, a type with no data center in those countries drops out.
            if opts["countries"] and "dataCenters" not in item:
                in_country = any(
                    sim.catalog.data_center(dc).country in opts["countries"]  # type: ignore[union-attr]
                    for dc in sim.catalog.offerings(gpu.id, opts["cloud"])
                )
                if not in_country:
                    continue
            gpus.append(item)
        return JSONResponse({"gpus": gpus})

    @router.get("/catalog/gpus/{gpu_id}")
    async def get_gpu(gpu_id: str, request: Request) -> JSONResponse:
        opts = _gpu_query(sim, request)
        gpu = sim.catalog.gpu(gpu_id)
        if gpu is None:
            raise ApiError(404, f"GPU type {gpu_id!r} not found")
        return JSONResponse(sim.catalog.gpu_json(gpu, **opts))

    @router.get("/catalog/datacenters")
    async def list_datacenters(request: Request) -> JSONResponse:
        q = request.query_params
        include = _enum_list("include", q.get("include"), ("GPU_AVAILABILITY", "CPU_AVAILABILITY"))
        regions = set(_csv(q.get("regions")))
        compliance = set(_csv(q.get("compliance")))
        volume_types = set(_csv(q.get("networkVolumeTypes")))
        global_network = q.get("globalNetwork")
        wanted_global = (
            _bool_param("globalNetwork", global_network) if global_network is not None else None
        )
        out = []
        for dc in sim.catalog.data_centers():
            if regions and dc.region not in regions:
                continue
            if not compliance <= set(dc.compliance) or not volume_types <= set(dc.volume_types):
                continue
            if wanted_global is not None and dc.global_network != wanted_global:
                continue
            out.append(
                sim.catalog.data_center_json(
                    dc,
                    gpu_availability="GPU_AVAILABILITY" in include,
                    blocked=sim.faults.catalog_blocked,
                )
            )
        return JSONResponse({"dataCenters": out})

    # --- Instant Clusters ----------------------------------------------------------------

    clusters = sim.clusters

    async def live_cluster(cluster_id: str) -> SimCluster:
        cluster = clusters.get(cluster_id)
        if cluster is None:
            raise ApiError(404, "cluster not found")
        return await clusters.refresh(cluster)

    @router.post("/clusters", status_code=201)
    async def create_cluster(request: Request) -> JSONResponse:
        body = await _json_body(request)
        _validate("CreateClusterRequest", body)
        cluster = clusters.create(body)
        request.scope.setdefault("sim", {})["cluster_id"] = cluster.id
        return JSONResponse(clusters.to_json(cluster), status_code=201)

    @router.get("/clusters")
    async def list_clusters() -> JSONResponse:
        out = []
        for cluster in clusters.alive():  # newest first; the spec has no pagination here
            await clusters.refresh(cluster)
            out.append(clusters.to_json(cluster))
        return JSONResponse({"clusters": out})

    @router.get("/clusters/{cluster_id}")
    async def get_cluster(cluster_id: str) -> JSONResponse:
        return JSONResponse(clusters.to_json(await live_cluster(cluster_id)))

    @router.get("/clusters/{cluster_id}/pods")
    async def list_cluster_pods(cluster_id: str) -> JSONResponse:
        return JSONResponse({"pods": clusters.members_json(await live_cluster(cluster_id))})

    @router.delete("/clusters/{cluster_id}", status_code=204)
    async def delete_cluster(cluster_id: str) -> Response:
        cluster = clusters.get(cluster_id)
        if cluster is None:
            raise ApiError(404, "cluster not found")
        await clusters.delete(cluster)
        return Response(status_code=204)

    # --- network volumes (read only: Hangar mounts volumes, never makes them) ---------------

    @router.get("/network-volumes")
    async def list_network_volumes() -> JSONResponse:
        return JSONResponse({"networkVolumes": [v.to_json() for v in sim.volumes.all()]})

    @router.get("/network-volumes/{volume_id}")
    async def get_network_volume(volume_id: str) -> JSONResponse:
        volume = sim.volumes.get(volume_id)
        if volume is None:
            raise ApiError(404, "network volume not found")
        return JSONResponse(volume.to_json())

    @router.get("/account/ssh-keys")
    async def get_ssh_keys() -> JSONResponse:
        return JSONResponse({"keys": list(pods.account_ssh_keys)})

    @router.put("/account/ssh-keys")
    async def put_ssh_keys(request: Request) -> JSONResponse:
        body = await _json_body(request)
        _validate("UpdateSshKeysRequest", body)
        pods.account_ssh_keys = list(body["keys"])
        return JSONResponse({"keys": list(pods.account_ssh_keys)})

    return router
