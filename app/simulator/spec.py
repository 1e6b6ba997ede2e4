"""The vendored RunPod v2 OpenAPI document and JSON-schema validators built from it.

Request bodies are checked against the spec's own schemas (Draft 2020-12, `$ref`s resolved
inside the document) so the simulator rejects exactly what the real contract rejects.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SPEC_PATH = Path(__file__).resolve().parents[1] / "providers/runpod/spec/openapi-v2.json"


@cache
def spec() -> dict[str, Any]:
    """The parsed OpenAPI document (loaded once)."""
    return json.loads(SPEC_PATH.read_text())


@cache
def validator(schema_name: str) -> Draft202012Validator:
    """A validator for `#/components/schemas/<schema_name>`.

    The schema root carries the document's `components` so every internal `$ref` resolves.
    """
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": spec()["components"]}
    return Draft202012Validator(root)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = spec()
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _declared_properties(schema: dict[str, Any], seen: set[int] | None = None) -> set[str]:
    """Every property name a schema (and its allOf/anyOf/oneOf/$ref parts) declares."""
    seen = seen if seen is not None else set()
    schema = _resolve(schema)
    if id(schema) in seen:
        return set()
    seen.add(id(schema))
    names = set(schema.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            names |= _declared_properties(part, seen)
    for key in ("then", "else"):
        if isinstance(schema.get(key), dict):
            names |= _declared_properties(schema[key], seen)
    return names


def _message(error: ValidationError) -> str | None:
    """One `errors[]` line for a violation, or None when it only echoes another error.

    Under Draft 2020-12 a failing subschema contributes no annotations, so one bad value
    (say `gpu.count: 0`) also makes `unevaluatedProperties` list every *valid* sibling as
    unexpected. Those cascades are dropped; only truly undeclared names are reported.
    """
    if error.validator == "unevaluatedProperties" and isinstance(error.instance, dict):
        known = _declared_properties(error.schema)
        unknown = sorted(k for k in error.instance if k not in known)
        if not unknown:
            return None
        quoted = ", ".join(repr(k) for k in unknown)
        verb = "was" if len(unknown) == 1 else "were"
        return f"{error.json_path}: unknown field(s) not allowed ({quoted} {verb} unexpected)"
    return f"{error.json_path}: {error.message}"


# Bodies already known to be valid, keyed by schema and canonical JSON. Validating a create
# body costs ~5 ms (unevaluatedProperties re-walks every allOf branch); a benchmark's
# bodies usually differ only by `name`, so it is normalized out of the key (see below).
_VALID: dict[tuple[str, str], bool] = {}
_VALID_MAX = 4096


def _cache_key(schema_name: str, instance: Any) -> tuple[str, str] | None:
    if not isinstance(instance, dict):
        return None
    if schema_name in ("CreatePodRequest", "CreateClusterRequest"):
        # `name` is only constrained to be a non-empty string, so any such value
        # validates identically; anything else is validated for real.
        if not isinstance(instance.get("name"), str) or not instance["name"]:
            return None
        instance = {**instance, "name": "-"}
        # `env` values are only constrained to be strings, and Hangar's carry per-pod keys
        # and ids: with every value a string, only the names matter.
        env = instance.get("env")
        if isinstance(env, dict) and all(isinstance(v, str) for v in env.values()):
            instance["env"] = dict.fromkeys(env, "-")
    try:
        return schema_name, json.dumps(instance, sort_keys=True)
    except (TypeError, ValueError):
        return None


def validation_errors(schema_name: str, instance: Any) -> list[str]:
    """Human-readable violations of `instance` against a spec schema; empty when valid."""
    key = _cache_key(schema_name, instance)
    if key is not None and key in _VALID:
        return []
    lines = _validate(schema_name, instance)
    if not lines and key is not None:
        if len(_VALID) >= _VALID_MAX:
            _VALID.clear()
        _VALID[key] = True
    return lines


def _validate(schema_name: str, instance: Any) -> list[str]:
    lines: list[str] = []
    errors = sorted(
        validator(schema_name).iter_errors(instance), key=lambda e: [str(p) for p in e.path]
    )
    for error in errors:
        line = _message(error)
        if line and line not in lines:
            lines.append(line)
    return lines
