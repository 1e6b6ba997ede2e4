"""Errors as `application/problem+json` (RFC 9457): the documented shape."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `env.MY_VAR`")
    message: str


class Problem(BaseModel):
    """An error, as `application/problem+json` (RFC 9457). `code` is stable and
    machine-readable; `detail` says what to change."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{
                "type": "https://hangar.dev/problems/unknown_gpu_type",
                "title": "Unknown gpu type",
                "status": 422,
                "detail": "gpu_type 'rtx 9999' matches no GPU type; the catalog has: ...",
                "code": "unknown_gpu_type",
                "instance": "/clusters",
                "request_id": "3f0c2a0d9b7e4f7c8d1e2a3b4c5d6e7f",
            }]
        },
    )

    type: str = Field(description="URI naming the problem type")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it")
    code: str = Field(description="Machine-readable problem code")
    instance: str | None = Field(default=None, description="The request path")
    request_id: str | None = Field(default=None, description="Quote it when reporting")
    errors: list[FieldError] | None = Field(
        default=None, description="Invalid fields (code `invalid_request`)"
    )
    limit: str | None = Field(default=None, description="The team limit hit (429)")
    candidates: list[str] | None = Field(
        default=None, description="GPU types that match, or the catalog (422)"
    )
