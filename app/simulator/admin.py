"""Admin HTTP API under `/_sim/` for tests and benchmarks driving a simulator over HTTP.

No auth unless the simulator was built with `admin_key`, in which case requests need
`Authorization: Bearer <admin_key>`. Admin requests are not recorded in the request log.

    GET    /_sim/health                     {"ok": true, "baseUrl": ...}
    GET    /_sim/requests[?endpoint=]       {"requests": [...], "counts": {...}, "total": n}
    DELETE /_sim/requests                   clear the record (204)
    GET    /_sim/pods[?name=&alive=]        every pod, terminated ones too
    GET    /_sim/pods/{id}                  one pod (admin view)
    GET    /_sim/clusters[?name=&alive=]    every Instant Cluster with its members
    GET    /_sim/clusters/{id}              one cluster (admin view)
    GET    /_sim/network-volumes            {"networkVolumes": [...]} (the spec's shape)
    POST   /_sim/network-volumes            {"name", "size", "dataCenterId", "id"?, "type"?}
                                            -> 201 the volume
    DELETE /_sim/network-volumes/{id}       remove one (204)
    GET    /_sim/faults                     {"faults": [...]}
    POST   /_sim/faults                     {"kind": ..., <kwargs of the Faults method>} -> 201
    DELETE /_sim/faults/{rule_id}           remove one rule (204)
    DELETE /_sim/faults                     remove all rules (204)
    GET    /_sim/config  PATCH /_sim/config provision_delay / start_delay
    GET    /_sim/stock   PUT /_sim/stock    {"count": n, "gpuId"?, "dataCenterId"?, "cloud"?}
    POST   /_sim/reset                      faults, pods, clusters, volumes, requests, stock,
                                            keys back to start
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from app.simulator.problems import ApiError

if TYPE_CHECKING:
    from app.simulator.server import Simulator


def create_admin_router(sim: Simulator) -> APIRouter:
    """Routes under `/_sim`."""

    async def check_admin(request: Request) -> None:
        if sim.admin_key is None:
            return
        header = request.headers.get("authorization", "")
        if header != f"Bearer {sim.admin_key}":
            raise ApiError(401, "admin key required")

    router = APIRouter(prefix="/_sim", dependencies=[Depends(check_admin)])

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise ApiError(422, "body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise ApiError(422, "body must be a JSON object")
        return body

    @router.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"ok": True, "baseUrl": sim.base_url})

    @router.get("/requests")
    async def requests(endpoint: str | None = None) -> JSONResponse:
        items = [r for r in sim.request_log.all() if endpoint in (None, r.endpoint)]
        return JSONResponse(
            {
                "requests": [r.to_json() for r in items],
                "counts": sim.request_log.counts(),
                "total": len(sim.request_log),
            }
        )

    @router.delete("/requests", status_code=204)
    async def clear_requests() -> Response:
        sim.request_log.clear()
        return Response(status_code=204)

    @router.get("/pods")
    async def all_pods(name: str | None = None, alive: bool | None = None) -> JSONResponse:
        pods = sim.pods.all()
        await sim.pods.refresh_all([p for p in pods if p.alive])
        out = [
            p.snapshot()
            for p in pods
            if (name is None or p.name == name) and (alive is None or p.alive == alive)
        ]
        return JSONResponse({"pods": out})

    @router.get("/pods/{pod_id}")
    async def one_pod(pod_id: str) -> JSONResponse:
        pod = sim.pods.get_any(pod_id)
        if pod is None:
            raise ApiError(404, "pod not found")
        await sim.pods.refresh(pod)
        return JSONResponse(pod.snapshot())

    @router.get("/clusters")
    async def all_clusters(name: str | None = None, alive: bool | None = None) -> JSONResponse:
        clusters = sim.clusters.all()
        out = []
        for c in clusters:
            if (name is None or c.name == name) and (alive is None or c.alive == alive):
                await sim.clusters.refresh(c)
                out.append(c.snapshot())
        return JSONResponse({"clusters": out})

    @router.get("/clusters/{cluster_id}")
    async def one_cluster(cluster_id: str) -> JSONResponse:
        cluster = sim.clusters.get_any(cluster_id)
        if cluster is None:
            raise ApiError(404, "cluster not found")
        await sim.clusters.refresh(cluster)
        return JSONResponse(cluster.snapshot())

    @router.get("/network-volumes")
    async def list_volumes() -> JSONResponse:
        return JSONResponse({"networkVolumes": [v.to_json() for v in sim.volumes.all()]})

    @router.post("/network-volumes", status_code=201)
    async def add_volume(request: Request) -> JSONResponse:
        body = await body_of(request)
        try:
            volume = sim.add_network_volume(
                body["name"],
                body["size"],
                body.get("dataCenterId", body.get("dataCenter")),
                volume_id=body.get("id"),
                type=body.get("type"),
            )
        except KeyError as exc:
            raise ApiError(422, f"missing field {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ApiError(422, str(exc)) from exc
        return JSONResponse(volume.to_json(), status_code=201)

    @router.delete("/network-volumes/{volume_id}", status_code=204)
    async def remove_volume(volume_id: str) -> Response:
        if not sim.volumes.remove(volume_id):
            raise ApiError(404, "network volume not found")
        return Response(status_code=204)

    @router.get("/faults")
    async def list_faults() -> JSONResponse:
        return JSONResponse({"faults": [r.to_json() for r in sim.faults.rules]})

    @router.post("/faults", status_code=201)
    async def add_fault(request: Request) -> JSONResponse:
        body = await body_of(request)
        kind = body.pop("kind", None)
        try:
            rule = sim.faults.add(str(kind), **body)
        except (TypeError, ValueError) as exc:
            raise ApiError(422, str(exc)) from exc
        return JSONResponse(rule.to_json(), status_code=201)

    @router.delete("/faults/{rule_id}", status_code=204)
    async def remove_fault(rule_id: str) -> Response:
        if not sim.faults.remove(rule_id):
            raise ApiError(404, "fault rule not found")
        return Response(status_code=204)

    @router.delete("/faults", status_code=204)
    async def clear_faults() -> Response:
        sim.faults.clear()
        return Response(status_code=204)

    @router.get("/config")
    async def get_config() -> JSONResponse:
        return JSONResponse(sim.config())

    @router.patch("/config")
    async def patch_config(request: Request) -> JSONResponse:
        body = await body_of(request)
        try:
            sim.configure(**body)
        except (TypeError, ValueError) as exc:
            raise ApiError(422, str(exc)) from exc
        return JSONResponse(sim.config())

    @router.get("/stock")
    async def get_stock() -> JSONResponse:
        return JSONResponse({"stock": sim.catalog.stock_json()})

    @router.put("/stock")
    async def put_stock(request: Request) -> JSONResponse:
        body = await body_of(request)
        try:
            matched = sim.catalog.set_stock(
                int(body["count"]),
                gpu_id=body.get("gpuId"),
                data_center=body.get("dataCenterId"),
                cloud=body.get("cloud"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(422, f"bad stock request: {exc}") from exc
        return JSONResponse({"matched": matched, "stock": sim.catalog.stock_json()})

    @router.post("/reset", status_code=204)
    async def reset() -> Response:
        await sim.reset()
        return Response(status_code=204)

    return router
