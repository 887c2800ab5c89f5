"""Check a function call against its JSON-schema spec with ``jsonschema``.

BFCL's type names (``dict``, ``float``, ``tuple``, ``any``) are translated to JSON Schema
first (:func:`to_json_schema`); a call to an unknown function, or with arguments that break
the schema, gets a failing :class:`~grpo_envs.verify.result.VerifyResult` that says why.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from grpo_envs.verify.result import VerifyResult
from grpo_envs.verify.tool_call_parse import FunctionCall

UNKNOWN_FUNCTION = "unknown_function"  #: a call names a function that is not in the specs
INVALID_ARGUMENTS = "invalid_arguments"  #: a call's arguments break its JSON schema
#: Longest schema-error message kept verbatim (jsonschema's messages quote the offending value).
MAX_MESSAGE_CHARS = 300


#: BFCL writes Python type names where JSON Schema has its own.
_BFCL_TYPES = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "list": "array",
    "int": "integer",
    "str": "string",
    "bool": "boolean",
}


def to_json_schema(schema: Any) -> Any:
    """Translate a BFCL-style parameter schema (``dict``, ``float``, ``tuple``, ``any``) to
    JSON Schema; a JSON-Schema input comes back unchanged. Unknown type names are dropped
    (no type constraint) rather than rejected."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            names = value if isinstance(value, list) else [value]
            mapped = [_BFCL_TYPES.get(n, n) for n in names if isinstance(n, str)]
            known = [n for n in mapped if n in ("object", "number", "array", "integer", "string", "boolean", "null")]
            if known and len(known) == len(mapped):
                out["type"] = known if isinstance(value, list) else known[0]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            out[key] = [to_json_schema(sub) for sub in value]
        elif key in ("optional", "default"):
            continue  # BFCL annotations; "default" is documentation only in JSON Schema too
        else:
            out[key] = value
    return out


def function_name(spec: Mapping[str, Any]) -> str:
    """The name of a spec, given flat (``{"name": ...}``) or OpenAI-wrapped (``{"function": {...}}``)."""
    return str(unwrap_spec(spec)["name"])


def unwrap_spec(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the flat function spec of an OpenAI-style ``{"type": "function", "function": {...}}``."""
    inner = spec.get("function")
    return inner if isinstance(inner, Mapping) and "name" in inner else spec


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def arguments_schema(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema of a function's arguments. Extra arguments are refused unless the spec
    allows them (BFCL counts an unexpected parameter as an error)."""
    parameters = to_json_schema(dict(unwrap_spec(spec).get("parameters") or {}))
    parameters.setdefault("type", "object")
    if parameters.get("type") == "object":
        parameters.setdefault("additionalProperties", False)
    return parameters


def validate_arguments(spec: Mapping[str, Any], arguments: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Check ``arguments`` against the spec's schema.

    :returns: ``(None, None)`` when valid, else ``(argument_name_or_None, message)`` for the
        first error found (``jsonschema``'s best match).
    :raises jsonschema.exceptions.SchemaError: the spec itself is not a valid schema.
    """
    validator = _validator(json.dumps(arguments_schema(spec), sort_keys=True))
    errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: (len(e.path), str(e.message)))
    if not errors:
        return None, None
    error = errors[0]
    argument = str(error.path[0]) if error.path else None
    if argument is None and error.validator == "required":
        missing = [name for name in error.validator_value if name not in arguments]
        argument = missing[0] if missing else None
    if argument is None and error.validator == "additionalProperties":
        extra = sorted(set(arguments) - set(error.schema.get("properties", {})))
        argument = extra[0] if extra else None
    message = error.message
    if len(message) > MAX_MESSAGE_CHARS:  # jsonschema quotes the whole value: name the rule instead
        rule = f"{error.validator} = {error.validator_value!r}"[:MAX_MESSAGE_CHARS]
        message = f"the value of {argument!r} breaks the schema rule {rule}"
    return argument, message


def resolve_function(name: str, specs_by_name: Mapping[str, Any]) -> str | None:
    """The spec name a called name refers to: the same name, or one whose dots became
    underscores (OpenAI-style APIs forbid dots, so BFCL's ``math.factorial`` is sent as
    ``math_factorial``)."""
    if name in specs_by_name:
        return name
    for spec_name in specs_by_name:
        if spec_name.replace(".", "_") == name:
            return spec_name
    return None


def validate_call(call: FunctionCall, specs_by_name: Mapping[str, Mapping[str, Any]]) -> VerifyResult | None:
    """``None`` when the call names a known function with schema-valid arguments, else the
    failing verdict (``unknown_function`` or ``invalid_arguments``, with details)."""
    resolved = resolve_function(call.name, specs_by_name)
    if resolved is None:
        available = sorted(specs_by_name)
        return VerifyResult.fail(
            UNKNOWN_FUNCTION,
            function=call.name,
            message=f"no function named {call.name!r}; available: {available}",
        )
    argument, message = validate_arguments(specs_by_name[resolved], call.arguments)
    if message is None:
        return None
    return VerifyResult.fail(
        INVALID_ARGUMENTS,
        function=call.name,
        argument=argument,
        message=f"arguments of {call.name!r} are invalid: {message}",
    )
