"""OpenAPI: error responses as `application/problem+json`, documented on every route."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.api.errors import PROBLEM
from app.api.schemas import Problem

DEFAULT_DESCRIPTIONS = {
    400: "The body could not be read",
    401: "Missing, unknown or revoked API token",
    404: "No cluster with that id belongs to your team",
    409: "Conflict",
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


def install(app: FastAPI) -> None:
    """Generate the schema once, then make every 4xx/5xx a problem+json response and
    give every operation the errors any request can get (422 for its parameters, 400 and
    413 for its body, 401 when it needs a token, 500). This covers routes owned elsewhere
    (the event stream) too."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary,
            description=app.description, routes=app.routes, tags=app.openapi_tags,
        )
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
