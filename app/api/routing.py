"""`LeanRoute`: a FastAPI route class for hot read endpoints (docs/read-path.md).

For each request FastAPI opens two exit stacks (for dependencies with `yield`) and runs a
general dependency solver which, in this version, costs about as much as a whole bare
request on a 2-core machine (cache keys of every dependency, query string and cookie
parsing, per-request type inspection of each parameter). A route whose only inputs are
path parameters, the `Request` and the caller (`CurrentCaller`) needs none of it: a
`LeanRoute` added to the app itself serves such an endpoint with the same results:

- the declared signature still drives the OpenAPI document, and each path parameter is
  validated by the route's own field, so a bad value is the same 422;
- the caller comes from `get_caller`, before the parameters are validated, as FastAPI
  orders it (a request without a valid token is a 401 whatever its path);
- exceptions reach the app's exception handlers as from any route;
- the endpoint must return a `Response`, which is sent as is (as FastAPI does).

Anything else (a route with other inputs, a LeanRoute included through a router, an app
with dependency overrides) is served by FastAPI's own handler.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import get_caller


class LeanRoute(APIRoute):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plan = _plan(self.dependant)
        if plan is not None:
            # As a route of the app (not of an included router, which builds its own
            # handler from `get_route_handler`): FastAPI's app stays the fallback.
            self.app = _lean_app(self, plan, fallback=self.app)

    @property
    def lean(self) -> bool:
        return _plan(self.dependant) is not None


def _lean_app(route: APIRoute, plan: tuple[list[Any], str | None, str | None],
              fallback: ASGIApp) -> ASGIApp:
    path_fields, request_name, caller_name = plan
    endpoint = route.dependant.call
    assert endpoint is not None
    name = getattr(endpoint, "__name__", "endpoint")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        provider = route.dependency_overrides_provider
        if provider is not None and getattr(provider, "dependency_overrides", None):
            await fallback(scope, receive, send)  # tests overriding dependencies
            return
        request = Request(scope, receive, send)
        values: dict[str, Any] = {}
        if caller_name is not None:
            values[caller_name] = await get_caller(request)
        errors: list[Any] = []
        params = request.path_params
        for field in path_fields:
            value, field_errors = field.validate(params[field.alias], values,
                                                 loc=("path", field.alias))
            if field_errors:
                errors.extend(field_errors)
            else:
                values[field.name] = value
        if errors:
            raise RequestValidationError(errors, body=None)
        if request_name is not None:
            values[request_name] = request
        response = await endpoint(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{name} is served by a LeanRoute: it must return a Response, "
                            f"not {type(response).__name__}")
        await response(scope, receive, send)

    return app


def _plan(dependant: Any) -> tuple[list[Any], str | None, str | None] | None:
    """(path fields, Request parameter name, caller parameter name) when those are the
    endpoint's only inputs; None otherwise."""
    if (dependant.query_params or dependant.header_params or dependant.cookie_params
            or dependant.body_params or dependant.websocket_param_name
            or dependant.http_connection_param_name or dependant.response_param_name
            or dependant.background_tasks_param_name or dependant.security_scopes_param_name
            or not inspect.iscoroutinefunction(dependant.call)):
        return None
    caller_name = None
    for sub in dependant.dependencies:
        if sub.call is not get_caller or caller_name is not None or not sub.name:
            return None
        caller_name = sub.name
    return list(dependant.path_params), dependant.request_param_name, caller_name
