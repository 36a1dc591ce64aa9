"""Request data as upstream's parsers read it: JSON object first, then form and query."""
from __future__ import annotations

import json
import logging
import math
from typing import Any, Callable

from flask import request

from actors.errors import ResourceError
from actors.responses import case, to_camel

log = logging.getLogger(__name__)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse_json(data: bytes | str) -> Any:
    """Strict JSON: ValueError for anything RFC 8259 does not allow. Python's parser also takes
    ``NaN``/``Infinity`` and turns ``1e400`` into infinity, which then broke integer fields (500) or
    were stored and made every later response invalid JSON; and a deeply nested document blew its
    recursion limit (500). All of them are bad input (400)."""
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("the JSON document is nested too deeply") from None


def json_body() -> Any:
    """The parsed JSON body, or None when the request carries no JSON."""
    if not request.is_json or not request.get_data(cache=True):
        return None
    try:
        return parse_json(request.get_data(cache=True))
    except (ValueError, UnicodeDecodeError) as e:
        raise ResourceError(
            f"Unable to process the JSON description. The body is not valid JSON ({e}); check its syntax."
        ) from None


def request_fields() -> dict:
    """Fields merged from the query string, the form, and a JSON object body (JSON wins)."""
    merged: dict[str, Any] = dict(request.args.items())
    merged.update(request.form.items())
    for key in set(request.args) | set(request.form):
        values = request.args.getlist(key) + request.form.getlist(key)
        if len(values) > 1:
            merged[f"__list__{key}"] = values
    body = json_body()
    if body is not None:
        if not isinstance(body, dict):
            raise ResourceError("The JSON body must be an object of fields.")
        merged.update(body)
        for key in body:  # a JSON value also wins over a repeated form or query key
            merged.pop(f"__list__{key}", None)
    return merged


def field_name(name: str) -> str:
    return to_camel(name) if case() == "camel" else name


def as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise ResourceError(f"Invalid value for {name}: {value!r}; use true or false.")


def as_force(value: Any) -> bool:
    """PUT's ``force``. Upstream parsed it with Python's ``bool``, so the string "false" forced an
    update; we read the usual false spellings as false and keep any other non-empty value true."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off")
    return bool(value)


def as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ResourceError(f"Invalid value for {name}: {value!r}; an integer is required.")
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ResourceError(f"Invalid value for {name}: {value!r}; an integer is required.") from None


def as_object(name: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise ResourceError(f"Invalid value for {name}: a JSON object is required.")
    return value


def as_list(name: str, value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


ACTOR_FIELD_TYPES: dict[str, Callable[[str, Any], Any]] = {
    "image": lambda n, v: str(v),
    "name": lambda n, v: str(v),
    "description": lambda n, v: str(v),
    "stateless": as_bool,
    "type": lambda n, v: str(v),
    "link": lambda n, v: str(v),
    "webhook": lambda n, v: str(v),
    "hints": as_list,
    "token": as_bool,
    "privileged": as_bool,
    "max_workers": as_int,
    "mem_limit": lambda n, v: str(v),
    "max_cpus": as_int,
    "use_container_uid": as_bool,
    "default_environment": as_object,
    "queue": lambda n, v: str(v),
    # upstream accepted these from the body (quirk kept: clients may send them back unchanged)
    "status": lambda n, v: str(v),
    "state": lambda n, v: v,
}


def parse_fields(data: dict, types: dict[str, Callable[[str, Any], Any]]) -> dict:
    fields = {}
    for name, convert in types.items():
        key = field_name(name)
        value = data.get(f"__list__{key}", data.get(key))
        if value is None:
            continue
        fields[name] = convert(key, value)
    return fields


def require_fields(fields: dict, helps: dict[str, str]) -> None:
    """400 naming the first missing required field, as upstream's parsers did: the message embeds
    ``{field: help-text}`` with the field spelled in the active case."""
    for name, help_text in helps.items():
        if fields.get(name) in (None, ""):
            raise ResourceError(f"Missing required field: {{'{field_name(name)}': '{help_text}'}}")


def as_text(name: str, value: Any) -> str:
    return str(value)
