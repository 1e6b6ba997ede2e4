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
    429: "A limit would be exceeded",
    500: "Unexpected error (logged with the request id)",
    503: "A dependency is unavailable; retry after Retry-After",
}


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
    413 for its body, 401 when it needs a token, 500). This covers routes owned elsewhere
    (the event stream) too. Paths are documented in the order of the routers in `order`
    (the app may include them, or add their routes, in another order, for routing
    speed)."""

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
        for path_item in schema.get("paths", {}).values():
            for op in path_item.values():
                responses = op.setdefault("responses", {})
                extra: list[int] = [500]
                if op.get("requestBody"):
                    extra += [400, 413]
                if op.get("parameters") or op.get("requestBody"):
                    extra.append(422)
                if op.get("security"):
                    extra.append(401)
                for code in extra:
                    responses.setdefault(str(code), {"description": DEFAULT_DESCRIPTIONS[code]})
                for code, response in responses.items():
                    if code.isdigit() and int(code) >= 400:
                        response["content"] = {PROBLEM: {"schema": problem_ref}}
                op["responses"] = dict(sorted(responses.items()))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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
