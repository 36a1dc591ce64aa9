"""Request data as upstream's parsers read it: JSON object first, then form and query."""
from __future__ import annotations

import json
import logging
import math
from typing import Any, Callable

from flask import request

from actors.config import conf
from actors.errors import ResourceError, TooLarge
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


REPEATABLE_FIELDS = ("hints",)  # list fields a form may send as repeated keys


def single_values(values, what: str = "field", repeatable: tuple[str, ...] = ()) -> dict:
    """``{key: value}`` of a query string or form; a key given more than once is a 400 (it could
    otherwise slip past a check that reads one of its values while the parser stores another)."""
    out: dict[str, Any] = {}
    for key in values:
        given = values.getlist(key)
        if len(given) > 1 and key not in repeatable:
            raise ResourceError(f"Invalid request: the {what} {key[:80]!r} was given {len(given)} times; give it once.")
        out[key] = given if len(given) > 1 else given[0]
    return out


def repeatable_names() -> tuple[str, ...]:
    return tuple(field_name(name) for name in REPEATABLE_FIELDS)


def form_values():
    """The request's form. An urlencoded body is kept (it is small), so that a JSON document sent
    with curl's default form type can still be recognised afterwards (explain_unread_json)."""
    if request.mimetype == "application/x-www-form-urlencoded":
        request.get_data(cache=True)
    return request.form


def form_and_query() -> dict:
    """Query string and form merged (the form wins); a key in both, or twice in one, is a 400."""
    repeatable = repeatable_names()
    query = single_values(request.args, "field", repeatable)
    form = single_values(form_values(), "field", repeatable)
    for key in set(query) & set(form):
        if key not in repeatable:
            raise ResourceError(f"Invalid request: the field {key[:80]!r} was given twice (query and form); give it once.")
    return {**query, **form}


def request_fields() -> dict:
    """Fields merged from the query string, the form, and a JSON object body (JSON wins)."""
    body = json_body()
    if body is None:
        explain_unread_json()
    merged = form_and_query()
    if body is not None:
        if not isinstance(body, dict):
            raise ResourceError("The JSON body must be an object of fields.")
        merged.update(body)
    return merged


def explain_unread_json() -> None:
    """A body that is JSON but was sent without ``Content-Type: application/json`` was read as a
    form (or not at all); say so rather than report its fields as missing."""
    if request.mimetype not in ("", "application/x-www-form-urlencoded", "text/plain"):
        return
    raw = request.get_data(cache=True)
    if raw.lstrip()[:1] not in (b"{", b"["):
        return
    try:
        parse_json(raw)
    except (ValueError, UnicodeDecodeError):
        return
    raise ResourceError(
        f"The request body is JSON but its Content-Type is {request.content_type or 'missing'!r}, so it was "
        "not read as JSON. Send it with the header 'Content-Type: application/json'.")


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


MAX_INT = 2**63 - 1  # what Docker (and Mongo) can hold


def as_int(name: str, value: Any) -> int:
    """An integer field; text must be an integer literal, and the value must fit in 64 bits."""
    bad = ResourceError(f"Invalid value for {name}: {str(value)[:80]!r}; an integer between {-MAX_INT} and "
                        f"{MAX_INT} is required.")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise bad
        value = int(value)
    elif not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            raise bad from None
    if abs(value) > MAX_INT:
        raise bad
    return value


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
        value = data.get(key)
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


# -- paging of the listings that can grow -----------------------------------------------------------
MAX_PAGING = 1_000_000_000  # beyond any store's size, within every backend's integers
PAGING_HELP = f"a whole number from 0 to {MAX_PAGING:,}"


def paging() -> tuple[int, int | None]:
    """``(offset, limit)`` from the query string: ``limit`` (page size) and ``skip`` (how many to
    leave out first; ``offset`` is taken too), the names later Abaco uses. Without them a listing is
    whole, as Abaco 1.4 clients expect: ``(0, None)``."""
    def number(name: str) -> int | None:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if not 0 <= value <= MAX_PAGING:
            raise ResourceError(f"Invalid {name}: {raw[:40]!r}; it must be {PAGING_HELP}.")
        return value

    skip = number("skip")
    return (skip if skip is not None else number("offset") or 0), number("limit")


# -- size limits of what Abaco stores (413 with the limit in the message) ---------------------------
SIZE_LIMITS = {
    # option of [web]: (default in bytes, what it limits)
    "max_description_size": (16_384, "description"),
    "max_state_size": (128_000, "state"),
    "max_message_size": (128_000, "message"),
}


def encoded_size(value: Any) -> int:
    """Bytes ``value`` takes: UTF-8 for text, the JSON encoding for anything else."""
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return len(text.encode("utf-8", "surrogatepass"))


def check_size(option: str, value: Any) -> None:
    default, what = SIZE_LIMITS[option]
    limit = conf().get_int("web", option, default)
    size = encoded_size(value)
    if limit >= 0 and size > limit:
        raise TooLarge(f"The {what} is {size} bytes; the limit is {limit} bytes ([web] {option}).")
