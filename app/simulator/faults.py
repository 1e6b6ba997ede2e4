"""Fault injection: rules that make the simulator misbehave in the ways RunPod does.

Each rule has a kind, optional scoping (endpoint, pod-name prefix, pod id), and a firing
budget: `count` (fire that many times, then go inactive) and/or `probability` (fire on each
matching occasion with that chance). With neither, a rule fires on every match until it is
removed. Rules are checked in the order they were added; the first one that fires wins.

Kinds and when they are consulted:

- `capacity`: at create, hides (GPU type, data center, cloud) offerings -> 400 capacity;
  optionally only for pods or only for Instant Clusters (`products`).
- `rate_limit` / `server_error`: before a request reaches its handler -> 429 / 5xx.
- `latency`: before a request is handled -> sleeps `seconds`.
- `lost_create`: after a create (pod or cluster) succeeded -> the response never reaches
  the client.
- `never_ip`, `exit_after`, `timing`: at create, fixed into the new pod (every member of
  a cluster is a pod created under its own name, `<cluster name>-<index>`).
- `host_key_change`: at each SSH connection to a matching pod (never consumed).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ENDPOINTS = (
    "create_pod",
    "list_pods",
    "get_pod",
    "delete_pod",
    "pod_action",
    "list_gpus",
    "get_gpu",
    "list_datacenters",
    "get_ssh_keys",
    "put_ssh_keys",
    "create_cluster",
    "list_clusters",
    "get_cluster",
    "delete_cluster",
    "list_cluster_pods",
    "list_network_volumes",
    "get_network_volume",
    "other",
)

CREATE_ENDPOINTS = ("create_pod", "create_cluster")
PRODUCTS = ("POD", "CLUSTER")

# Short names accepted wherever an endpoint scope is given.
ENDPOINT_ALIASES: dict[str, tuple[str, ...]] = {
    "create": ("create_pod",),
    "list": ("list_pods",),
    "get": ("get_pod",),
    "delete": ("delete_pod",),
    "terminate": ("delete_pod",),
    "action": ("pod_action",),
    "catalog": ("list_gpus", "get_gpu", "list_datacenters"),
    "pods": ("create_pod", "list_pods", "get_pod", "delete_pod", "pod_action"),
    "clusters": (
        "create_cluster",
        "list_clusters",
        "get_cluster",
        "delete_cluster",
        "list_cluster_pods",
    ),
    "network_volumes": ("list_network_volumes", "get_network_volume"),
}

KINDS = (
    "capacity",
    "rate_limit",
    "server_error",
    "latency",
    "lost_create",
    "never_ip",
    "exit_after",
    "host_key_change",
    "timing",
    "low_balance",
    "price_change",
)


def normalize_endpoints(endpoint: str | Iterable[str] | None) -> frozenset[str] | None:
    """`"create"`, `"get_pod"` or a list of either -> a set of endpoint names (None = all)."""
    if endpoint is None:
        return None
    names = [endpoint] if isinstance(endpoint, str) else list(endpoint)
    out: set[str] = set()
    for name in names:
        if name in ENDPOINT_ALIASES:
            out.update(ENDPOINT_ALIASES[name])
        elif name in ENDPOINTS:
            out.add(name)
        else:
            raise ValueError(f"unknown endpoint {name!r}; use one of {ENDPOINTS} or aliases")
    return frozenset(out)


def _set(values: str | Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    return frozenset([values] if isinstance(values, str) else values)


@dataclass(eq=False)
class Rule:
    """One fault rule. Only the fields relevant to its `kind` are set."""

    kind: str
    id: str = ""
    endpoints: frozenset[str] | None = None
    name_prefix: str | None = None
    pod_ids: frozenset[str] | None = None
    remaining: int | None = None  # None: unlimited
    probability: float | None = None  # None: always
    fired: int = 0
    created: float = field(default_factory=time.time)
    # kind-specific parameters
    gpu_ids: frozenset[str] | None = None
    data_centers: frozenset[str] | None = None
    clouds: frozenset[str] | None = None
    products: frozenset[str] | None = None  # capacity: POD and/or CLUSTER (None: both)
    visible_in_catalog: bool = True
    status: int | str | None = None
    retry_after: int | None = None
    seconds: float | None = None
    mode: str | None = None
    detail: str | None = None
    provision_delay: float | None = None
    start_delay: float | None = None
    factor: float | None = None

    @property
    def active(self) -> bool:
        return self.remaining is None or self.remaining > 0

    def scoped_to(
        self, endpoint: str | None = None, name: str | None = None, pod_id: str | None = None
    ) -> bool:
        """Whether the rule's endpoint/name/pod-id scope covers this occasion."""
        if self.endpoints is not None and endpoint not in self.endpoints:
            return False
        if self.name_prefix is not None and not (name or "").startswith(self.name_prefix):
            return False
        if self.pod_ids is not None and pod_id not in self.pod_ids:
            return False
        return True

    def covers_offering(self, gpu_id: str, dc_id: str, cloud: str) -> bool:
        """For capacity rules: whether (gpu, dc, cloud) is among the blocked offerings."""
        return (
            (self.gpu_ids is None or gpu_id in self.gpu_ids)
            and (self.data_centers is None or dc_id in self.data_centers)
            and (self.clouds is None or cloud in self.clouds)
        )

    def covers_product(self, product: str | None) -> bool:
        """For capacity rules: whether creates of `product` (POD, CLUSTER) are blocked.

        A rule limited to some products does not cover a question about no product (the
        data center listing's `gpuAvailability`)."""
        return self.products is None or product in self.products

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if value is None:
                continue
            out[key] = sorted(value) if isinstance(value, frozenset) else value
        out["active"] = self.active
        return out


@dataclass(frozen=True)
class PodFaults:
    """What the fault rules decided for one pod at creation time."""

    never_ip: str | None = None  # how runtime ports look: "null", "omit" or "empty"
    exit_after: float | None = None  # seconds after creation
    exit_status: str = "EXITED"
    provision_delay: float | None = None
    start_delay: float | None = None
    price_factor: float = 1.0  # the pod bills its list price times this
    rules: tuple[str, ...] = ()  # ids of the rules that fired


class Faults:
    """The active fault rules of one simulator; safe to mutate while it runs."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[Rule] = []
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)

    # --- bookkeeping -------------------------------------------------------------------

    @property
    def rules(self) -> list[Rule]:
        """All rules, including exhausted ones (`rule.active` tells them apart)."""
        return list(self._rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self._rules if r.id == rule_id), None)

    def remove(self, rule: Rule | str) -> bool:
        """Delete a rule (or its id); True if it existed."""
        rule_id = rule if isinstance(rule, str) else rule.id
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) != before

    def clear(self) -> None:
        """Remove every rule."""
        self._rules.clear()

    def seed(self, seed: int | None) -> None:
        """Reseed the random source used for `probability` rules."""
        self._rng.seed(seed)

    def _add(self, rule: Rule) -> Rule:
        if rule.remaining is not None and rule.remaining < 0:
            raise ValueError("count must be >= 0")
        if rule.probability is not None and not 0.0 <= rule.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        rule.id = f"{rule.kind}-{next(self._ids)}"
        self._rules.append(rule)
        return rule

    def _rolls(self, rule: Rule) -> bool:
        return rule.probability is None or self._rng.random() < rule.probability

    @staticmethod
    def _fire(rule: Rule) -> Rule:
        rule.fired += 1
        if rule.remaining is not None:
            rule.remaining -= 1
        return rule

    def _take(
        self,
        kinds: Iterable[str],
        *,
        endpoint: str | None = None,
        name: str | None = None,
        pod_id: str | None = None,
    ) -> Rule | None:
        kinds = set(kinds)
        for rule in self._rules:
            if rule.kind in kinds and rule.active and rule.scoped_to(endpoint, name, pod_id):
                if self._rolls(rule):
                    return self._fire(rule)
        return None

    # --- adding rules (the Python API) -----------------------------------------------------

    def capacity(
        self,
        gpu_ids: str | Iterable[str] | None = None,
        data_centers: str | Iterable[str] | None = None,
        *,
        clouds: str | Iterable[str] | None = None,
        name_prefix: str | None = None,
        count: int | None = None,
        probability: float | None = None,
        visible_in_catalog: bool = True,
        products: str | Iterable[str] | None = None,
    ) -> Rule:
        """No capacity for these GPU types and/or data centers (None = all of them).

        A create whose every candidate data center is blocked gets 400 with the capacity
        detail; a create without `dataCenterIds` is placed in an unblocked data center if
        one has stock. `count` limits how many creates the rule fails. With
        `visible_in_catalog` (default) the catalog reports the blocked offerings as NONE;
        pass False to model a catalog that still says "available". `products` ("POD",
        "CLUSTER") limits the rule to pod creates or to Instant Cluster creates (an
        Instant Cluster is placed whole in one data center, or not at all).
        """
        wanted = _set(products)
        if wanted is not None and not wanted <= set(PRODUCTS):
            raise ValueError(f"products must be among {PRODUCTS}")
        return self._add(
            Rule(
                "capacity",
                gpu_ids=_set(gpu_ids),
                data_centers=_set(data_centers),
                clouds=_set(clouds),
                products=wanted,
                name_prefix=name_prefix,
                remaining=count,
                probability=probability,
                visible_in_catalog=visible_in_catalog,
            )
        )

    def rate_limit(
        self,
        count: int | None = None,
        *,
        probability: float | None = None,
        endpoint: str | Iterable[str] | None = None,
        name_prefix: str | None = None,
        retry_after: int = 1,
        detail: str = "rate limit exceeded for the minute window",
    ) -> Rule:
        """429 with `Retry-After: retry_after` for the next `count` matching requests."""
        return self._http_error("rate_limit", 429, count, probability, endpoint, name_prefix,
                                detail, retry_after=retry_after)

    def server_error(
        self,
        status: int = 503,
        count: int | None = None,
        *,
        probability: float | None = None,
        endpoint: str | Iterable[str] | None = None,
        name_prefix: str | None = None,
        detail: str | None = None,
    ) -> Rule:
        """A 5xx (500/502/503/504) problem response for the next `count` matching requests."""
        if not 500 <= int(status) <= 599:
            raise ValueError("server_error status must be 5xx")
        return self._http_error("server_error", int(status), count, probability, endpoint,
                                name_prefix, detail or "upstream service temporarily unavailable")

    def latency(
        self,
        seconds: float,
        *,
        endpoint: str | Iterable[str] | None = None,
        name_prefix: str | None = None,
        count: int | None = None,
        probability: float | None = None,
    ) -> Rule:
        """Delay matching requests by `seconds` before they are handled."""
        return self._add(
            Rule(
                "latency",
                endpoints=normalize_endpoints(endpoint),
                name_prefix=name_prefix,
                remaining=count,
                probability=probability,
                seconds=float(seconds),
            )
        )

    def lost_create(
        self,
        count: int | None = None,
        *,
        probability: float | None = None,
        mode: str = "drop",
        name_prefix: str | None = None,
        hang_seconds: float = 600.0,
        endpoint: str | Iterable[str] = "create_pod",
    ) -> Rule:
        """The next `count` successful creates really create the pod, but the client never
        gets the response.

        `mode="drop"`: the TCP connection is closed without a byte of response (fast; the
        client sees a transport error). `mode="hang"`: nothing is sent until the client
        gives up (or `hang_seconds` pass), then the connection is closed. `endpoint`:
        "create_pod" (default), "create_cluster" (the whole cluster is created), or both.
        """
        if mode not in ("drop", "hang"):
            raise ValueError("mode must be 'drop' or 'hang'")
        endpoints = normalize_endpoints(endpoint)
        if not endpoints or not endpoints <= set(CREATE_ENDPOINTS):
            raise ValueError(f"lost_create endpoint must be among {CREATE_ENDPOINTS}")
        return self._add(
            Rule(
                "lost_create",
                endpoints=endpoints,
                name_prefix=name_prefix,
                remaining=count,
                probability=probability,
                mode=mode,
                seconds=float(hang_seconds),
            )
        )

    # Alias matching the wording of the fault list.
    lose_create_response = lost_create

    def never_ip(
        self,
        *,
        name_prefix: str | None = None,
        count: int | None = None,
        probability: float | None = None,
        ports: str = "null",
    ) -> Rule:
        """Pods created next reach RUNNING but never get a public IP/port or SSH server.

        `ports` shapes `runtime.ports`: "null" keeps the entries with `public`/`ip` null,
        "omit" drops those keys, "empty" reports `ports: []`.
        """
        if ports not in ("null", "omit", "empty"):
            raise ValueError("ports must be 'null', 'omit' or 'empty'")
        return self._add(
            Rule(
                "never_ip",
                name_prefix=name_prefix,
                remaining=count,
                probability=probability,
                mode=ports,
            )
        )

    def exit_after(
        self,
        seconds: float,
        *,
        status: str = "EXITED",
        name_prefix: str | None = None,
        count: int | None = None,
        probability: float | None = None,
    ) -> Rule:
        """Pods created next go to `status` (EXITED or ERROR) `seconds` after creation.

        Shorter than the pod's provision+start time means it fails while starting;
        longer means it dies after having been RUNNING.
        """
        if status not in ("EXITED", "ERROR"):
            raise ValueError("status must be 'EXITED' or 'ERROR'")
        return self._add(
            Rule(
                "exit_after",
                name_prefix=name_prefix,
                remaining=count,
                probability=probability,
                seconds=float(seconds),
                status=status,
            )
        )

    def change_host_key(
        self, *, name_prefix: str | None = None, pod_id: str | Iterable[str] | None = None
    ) -> Rule:
        """Matching pods present a different SSH host key on every connection after their
        first one (as if the machine behind the address had been replaced)."""
        return self._add(Rule("host_key_change", name_prefix=name_prefix, pod_ids=_set(pod_id)))

    def pod_timing(
        self,
        *,
        provision_delay: float | None = None,
        start_delay: float | None = None,
        name_prefix: str | None = None,
        count: int | None = None,
    ) -> Rule:
        """Override the simulator-wide lifecycle delays for pods created next."""
        return self._add(
            Rule(
                "timing",
                name_prefix=name_prefix,
                remaining=count,
                provision_delay=provision_delay,
                start_delay=start_delay,
            )
        )

    def low_balance(
        self,
        count: int | None = None,
        *,
        probability: float | None = None,
        endpoint: str | Iterable[str] | None = "create",
        name_prefix: str | None = None,
        detail: str = "Insufficient balance: add funds to your account to deploy this pod",
    ) -> Rule:
        """402 (the account's balance is too low; RunPod's create guidance: stop) for the next
        `count` matching requests, creates by default."""
        return self._http_error("low_balance", 402, count, probability, endpoint, name_prefix,
                                detail)

    def _http_error(
        self,
        kind: str,
        status: int,
        count: int | None,
        probability: float | None,
        endpoint: str | Iterable[str] | None,
        name_prefix: str | None,
        detail: str,
        retry_after: int | None = None,
    ) -> Rule:
        """A rule answering matching requests with `status` and a problem body (`detail`)."""
        return self._add(
            Rule(
                kind,
                endpoints=normalize_endpoints(endpoint),
                name_prefix=name_prefix,
                remaining=count,
                probability=probability,
                status=status,
                retry_after=retry_after,
                detail=detail,
            )
        )

    def price_change(
        self,
        factor: float,
        *,
        name_prefix: str | None = None,
        count: int | None = None,
    ) -> Rule:
        """Pods created next bill `factor` times the catalog's price (`cost` in the pod), as
        when RunPod's price moves between a quote and the create."""
        if factor <= 0:
            raise ValueError("factor must be positive")
        return self._add(
            Rule("price_change", name_prefix=name_prefix, remaining=count, factor=float(factor))
        )

    _FACTORIES = {
        "capacity": "capacity",
        "rate_limit": "rate_limit",
        "server_error": "server_error",
        "latency": "latency",
        "lost_create": "lost_create",
        "never_ip": "never_ip",
        "exit_after": "exit_after",
        "host_key_change": "change_host_key",
        "timing": "pod_timing",
        "low_balance": "low_balance",
        "price_change": "price_change",
    }

    def add(self, kind: str, **params: Any) -> Rule:
        """Add a rule by kind name with the keyword arguments of its method (admin API)."""
        method = self._FACTORIES.get(kind)
        if method is None:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {KINDS}")
        return getattr(self, method)(**params)

    # --- consulting rules (used by the simulator) ---------------------------------------------

    def capacity_rules(
        self, gpu_id: str, cloud: str, name: str | None, *, product: str = "POD"
    ) -> list[Rule]:
        """Capacity rules that apply to this create (probabilities rolled once, here)."""
        out = []
        for rule in self._rules:
            if rule.kind != "capacity" or not rule.active or not rule.covers_product(product):
                continue
            if rule.gpu_ids is not None and gpu_id not in rule.gpu_ids:
                continue
            if rule.clouds is not None and cloud not in rule.clouds:
                continue
            if rule.scoped_to(name=name) and self._rolls(rule):
                out.append(rule)
        return out

    def consume(self, rules: Iterable[Rule]) -> None:
        """Count a firing for each rule (capacity rules that failed a create)."""
        for rule in rules:
            self._fire(rule)

    def catalog_blocked(
        self, gpu_id: str, dc_id: str, cloud: str, product: str | None = None
    ) -> bool:
        """Whether the catalog should report an offering as unavailable (for `product`)."""
        return any(
            r.kind == "capacity"
            and r.active
            and r.visible_in_catalog
            and r.name_prefix is None
            and r.covers_offering(gpu_id, dc_id, cloud)
            and r.covers_product(product)
            for r in self._rules
        )

    def take_latency(self, endpoint: str, name: str | None) -> float:
        rule = self._take(("latency",), endpoint=endpoint, name=name)
        return (rule.seconds or 0.0) if rule else 0.0

    def take_http_error(self, endpoint: str, name: str | None) -> Rule | None:
        """The 429/5xx/402 rule to answer this request with, if any."""
        return self._take(("rate_limit", "server_error", "low_balance"), endpoint=endpoint,
                          name=name)

    def take_lost_create(self, name: str | None, endpoint: str = "create_pod") -> Rule | None:
        return self._take(("lost_create",), endpoint=endpoint, name=name)

    def pod_faults(self, name: str) -> PodFaults:
        """Fix the per-pod faults of a pod being created (consumes those rules)."""
        fired: list[str] = []
        never = self._take(("never_ip",), name=name)
        exit_rule = self._take(("exit_after",), name=name)
        timing = self._take(("timing",), name=name)
        price = self._take(("price_change",), name=name)
        for rule in (never, exit_rule, timing, price):
            if rule is not None:
                fired.append(rule.id)
        return PodFaults(
            never_ip=never.mode if never else None,
            exit_after=exit_rule.seconds if exit_rule else None,
            exit_status=str(exit_rule.status) if exit_rule else "EXITED",
            provision_delay=timing.provision_delay if timing else None,
            start_delay=timing.start_delay if timing else None,
            price_factor=price.factor if price and price.factor else 1.0,
            rules=tuple(fired),
        )

    def host_key_changed(self, pod_id: str, name: str) -> bool:
        """Whether a pod should present its replacement host key (after connection #1)."""
        for rule in self._rules:
            if rule.kind == "host_key_change" and rule.scoped_to(name=name, pod_id=pod_id):
                rule.fired += 1
                return True
        return False
