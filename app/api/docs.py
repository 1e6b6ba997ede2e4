"""OpenAPI: error responses as `application/problem+json`, documented on every route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from app.api.deps import bearer, get_caller
from app.api.errors import PROBLEM
from app.schemas.problems import Problem

DEFAULT_DESCRIPTIONS = {
    400: "The body could not be read",
    401: "Missing, unknown or revoked API token",
    404: "No cluster with that id belongs to your team",
    406: "None of the types in Accept is offered",
    409: "Conflict",
    410: "No longer kept",
    413: "Request body larger than 1 MiB",
    415: "Body is not JSON",
    422: "Invalid request: `errors` lists each field and what to change",
    429: "A limit would be exceeded, or too many failed authentications from your address "
         "(retry after Retry-After)",
    500: "Unexpected error (logged with the request id)",
    503: "A dependency (the database, Redis, the GPU provider) is unavailable; retry after "
         "Retry-After",
}

# One example per status, so a reader (or a generated client's docs) sees what each is.
_EXAMPLES: dict[int, tuple[str, str, dict[str, Any]]] = {
    400: ("bad_request", "The body is not valid JSON (Expecting value at character 0).", {}),
    401: ("unauthorized", "The API token is unknown or revoked.", {}),
    404: ("not_found", "No cluster with that id belongs to your team.", {}),
    405: ("method_not_allowed", "This route does not take that method; see the Allow header.",
          {}),
    406: ("not_acceptable", "This route answers application/json or text/csv.", {}),
    409: ("idempotency_request_in_flight", "A request with this Idempotency-Key is still "
          "being processed; retry in a moment to get its response.", {}),
    410: ("events_purged", "This cluster ended on 2026-10-01 and its events were deleted "
          "after the retention period.", {}),
    413: ("body_too_large", "The request body is larger than 1048576 bytes.", {}),
    415: ("unsupported_media_type", "Send the body as JSON with 'Content-Type: "
          "application/json'.", {}),
    422: ("invalid_request", "nodes: Input should be less than or equal to 64",
          {"errors": [{"field": "nodes", "message": "Input should be less than or equal to 64"}]}),
    429: ("limit_live_nodes", "Your team has 60 live nodes and asks for 8 more; the limit is "
          "64.", {"limit": "max_live_nodes"}),
    500: ("internal_error", "Hangar hit an unexpected error; it has been logged. Retry, and "
          "report it if it persists.", {}),
    503: ("provider_unavailable", "Could not read runpod's GPU catalog (RunPod 503); retry "
          "shortly.", {}),
}
# Where the answer carries Retry-After.
_RETRY_AFTER = {409, 429, 503}


def _example(status: int) -> dict[str, Any]:
    code, detail, extra = _EXAMPLES.get(status, ("http_error", "See `detail`.", {}))
    return {"type": f"https://hangar.dev/problems/{code}",
            "title": code.replace("_", " ").capitalize(), "status": status, "detail": detail,
            "code": code, "instance": "/clusters", "request_id": "3f0c2a0d9b7e4f7c8d1e2a3b",
            **extra}


def problems(*codes: int, descriptions: dict[int, str] | None = None) -> dict[int | str, Any]:
    """`responses=` entries for these status codes, each a problem+json `Problem`."""
    descriptions = descriptions or {}
    return {
        code: {"model": Problem, "description": descriptions.get(code, DEFAULT_DESCRIPTIONS[code])}
        for code in codes
    }


def install(app: FastAPI, order: Sequence[APIRouter] = ()) -> None:
    """Generate the schema once, then make every 4xx/5xx a problem+json response and
    give every operation the errors any request can get (422 for its parameters, 400 and
    413 for its body, 401 and 429 when it needs a token, 503 unless it is /healthz, 500).
    This covers routes owned elsewhere (the event stream) too. Paths are documented in the
    order of the routers in `order` (the app may include them, or add their routes, in
    another order, for routing speed)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        # A router's rank applies to its inclusion and to its routes added to the app.
        rank = {id(router): i for i, router in enumerate(order)}
        rank.update({id(route): i for i, router in enumerate(order) for route in router.routes})
        routes = sorted(app.routes, key=lambda r: rank.get(
            id(getattr(r, "original_router", r)), -1))
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary,
            description=app.description, routes=routes, tags=app.openapi_tags,
        )
        _declare_bearer(app, schema)
        _name_operations(app, schema)
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        schema.setdefault("components", {}).setdefault("schemas", {})
        schema["components"]["schemas"]["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        schema["components"]["schemas"].update(
            Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            .pop("$defs", {})
        )
        schema["components"]["schemas"]["Problem"].pop("$defs", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)
        for path, path_item in schema.get("paths", {}).items():
            for op in path_item.values():
                responses = op.setdefault("responses", {})
                extra: list[int] = [500]
                if path != "/healthz":  # every other route needs the database
                    extra.append(503)
                if op.get("requestBody"):
                    extra += [400, 413]
                if op.get("parameters") or op.get("requestBody"):
                    extra.append(422)
                if op.get("security"):
                    extra += [401, 429]  # 429: failed authentications (app/api/abuse.py)
                for code in extra:
                    responses.setdefault(str(code), {"description": DEFAULT_DESCRIPTIONS[code]})
                for code, response in responses.items():
                    if code.isdigit() and int(code) >= 400:
                        response["content"] = {PROBLEM: {"schema": problem_ref,
                                                         "example": _example(int(code))}}
                        if int(code) in _RETRY_AFTER:
                            response.setdefault("headers", {})["Retry-After"] = {
                                "description": "Seconds to wait before retrying",
                                "schema": {"type": "integer"}}
                op["responses"] = dict(sorted(responses.items()))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _name_operations(app: FastAPI, schema: dict[str, Any]) -> None:
    """operationIds are the route functions' names: short verbs a caller would write
    (`create_cluster`, `list_clusters`, `get_team`), not FastAPI's path-derived ids, so
    generated clients read like the API's docs."""
    for route in iter_route_contexts(app.routes):
        if not (isinstance(route.original_route, APIRoute) and route.include_in_schema):
            continue
        path_item = schema.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            op = path_item.get(method.lower())
            if op is not None:
                op["operationId"] = route.name


# Keys FastAPI writes before an operation's `security` (get_openapi_operation_metadata).
_METADATA_KEYS = ("tags", "summary", "description", "operationId", "deprecated")


def _depends_on(dependant: Any, call: Any) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _declare_bearer(app: FastAPI, schema: dict[str, Any]) -> None:
    """The bearer scheme on every operation that depends on `get_caller`, as FastAPI
    writes it for a security dependency (`get_caller` calls `bearer` itself instead of
    depending on it, which is cheaper per request)."""
    name = bearer.scheme_name
    secured = False
    for route in iter_route_contexts(app.routes):
        if not (isinstance(route.original_route, APIRoute) and route.include_in_schema
                and _depends_on(route.dependant, get_caller)):
            continue
        path_item = schema.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            op = path_item.get(method.lower())
            if op is None or "security" in op:
                continue
            head = {k: v for k, v in op.items() if k in _METADATA_KEYS}
            tail = {k: v for k, v in op.items() if k not in _METADATA_KEYS}
            path_item[method.lower()] = {**head, "security": [{name: []}], **tail}
            secured = True
    if secured:
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[name] = (
            jsonable_encoder(bearer.model, by_alias=True, exclude_none=True)
        )
