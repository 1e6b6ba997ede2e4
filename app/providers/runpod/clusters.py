"""RunPod Instant Clusters and network volumes (read only) through REST v2."""

from __future__ import annotations

from app.providers.base import Cluster, ClusterSpec, InvalidRequest, NetworkVolume, NotFound

from . import types as v2
from .http import RunPodHTTP, log
from .mapping import cluster_body, describe_body, to_cluster, to_network_volume
from .retry import retry_create, retry_reads


class ClusterCalls(RunPodHTTP):
    """The Instant Cluster and network volume calls of `RunPodProvider`."""

    # --- Instant Clusters -------------------------------------------------------------

    async def create_cluster(self, spec: ClusterSpec) -> Cluster:
        """`POST /clusters`: every member in one data center, or a `CapacityError` and none.

        Retried only on 429 and on a connection that never opened, like `create_pod`: after
        a 5xx or a lost response the cluster may exist, so the caller looks it up by name
        (`find_cluster_by_name`) before trying again. The answer carries no members yet.
        """
        body = cluster_body(spec)
        endpoint = "POST /clusters"
        log.debug("runpod: creating cluster %s", describe_body(body))

        async def attempt() -> Cluster:
            resp = await self._send("POST", "/clusters", endpoint, json=body)
            if resp.is_success:
                return to_cluster(self._parse(resp, v2.Cluster, endpoint))
            err = self._error(resp, endpoint)
            if isinstance(err, NotFound):  # e.g. an unknown network volume: the request's fault
                err = InvalidRequest(err.message, status=404)
            raise err

        cluster = await self._backoff.run("create_cluster", attempt, retry_create)
        log.info(
            "runpod: created cluster %s (%s), %d nodes in %s",
            cluster.id,
            cluster.name,
            cluster.node_count,
            cluster.data_center_id or "?",
        )
        return cluster

    async def get_cluster(self, cluster_id: str) -> Cluster | None:
        """`GET /clusters/{id}` and `GET /clusters/{id}/pods` (two requests); None on 404."""
        path = self._resource_path("/clusters/", cluster_id, "cluster id")
        endpoint = "GET /clusters/{id}"

        async def attempt() -> v2.Cluster | None:
            resp = await self._send("GET", path, endpoint)
            if resp.status_code == 404:
                return None
            if resp.is_success:
                return self._parse(resp, v2.Cluster, endpoint)
            raise self._error(resp, endpoint)

        summary = await self._backoff.run("get_cluster", attempt, retry_reads)
        if summary is None:
            return None
        try:
            members = await self._list_all(
                path + "/pods", "GET /clusters/{id}/pods", v2.ListPodsResponse, "cluster_pods"
            )
        except NotFound:  # deleted between the two reads
            return None
        return to_cluster(summary, [m for page in members for m in page.pods])

    async def list_clusters(self, name_prefix: str | None = None) -> list[Cluster]:
        """Every Instant Cluster of the account (summaries: `members` is empty)."""
        pages = await self._list_all(
            "/clusters", "GET /clusters", v2.ListClustersResponse, "list_clusters"
        )
        clusters: dict[str, Cluster] = {}
        for page in pages:
            for raw in page.clusters:
                clusters.setdefault(raw.id, to_cluster(raw))
        found = list(clusters.values())
        if name_prefix:
            found = [c for c in found if c.name.startswith(name_prefix)]
        return found

    async def find_cluster_by_name(self, name: str) -> Cluster | None:
        """The cluster with exactly this name (a summary); the oldest if there are several."""
        named = [c for c in await self.list_clusters(name_prefix=name) if c.name == name]
        if not named:
            return None
        if len(named) > 1:
            named.sort(key=_created_key)
            log.warning(
                "runpod: %d clusters are named %r (%s); using the oldest, %s",
                len(named),
                name,
                ", ".join(c.id for c in named),
                named[0].id,
            )
        return named[0]

    async def delete_cluster(self, cluster_id: str) -> None:
        """`DELETE /clusters/{id}` (the members go with it): 204 or 404 means gone."""
        path = self._resource_path("/clusters/", cluster_id, "cluster id")
        endpoint = "DELETE /clusters/{id}"

        async def attempt() -> None:
            resp = await self._send("DELETE", path, endpoint)
            if resp.is_success or resp.status_code == 404:
                return
            raise self._error(resp, endpoint)

        await self._backoff.run("delete_cluster", attempt, retry_reads)
        log.info("runpod: cluster %s deleted", cluster_id)

    # --- network volumes (read only) --------------------------------------------------------

    async def list_network_volumes(self) -> list[NetworkVolume]:
        """`GET /network-volumes`: the account's volumes."""
        pages = await self._list_all(
            "/network-volumes",
            "GET /network-volumes",
            v2.ListNetworkVolumesResponse,
            "list_network_volumes",
        )
        return [to_network_volume(v) for page in pages for v in page.network_volumes]

    async def get_network_volume(self, volume_id: str) -> NetworkVolume | None:
        """`GET /network-volumes/{id}`; None on 404."""
        path = self._resource_path("/network-volumes/", volume_id, "network volume id")
        endpoint = "GET /network-volumes/{id}"

        async def attempt() -> NetworkVolume | None:
            resp = await self._send("GET", path, endpoint)
            if resp.status_code == 404:
                return None
            if resp.is_success:
                return to_network_volume(self._parse(resp, v2.NetworkVolume, endpoint))
            raise self._error(resp, endpoint)

        return await self._backoff.run("get_network_volume", attempt, retry_reads)


def _created_key(cluster: Cluster) -> tuple[int, float, str]:
    if cluster.created_at is None:
        return (1, 0.0, cluster.id)
    return (0, cluster.created_at.timestamp(), cluster.id)

