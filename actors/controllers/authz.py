"""Authentication and authorization of every request.

The ``before_request`` hook of every authenticated app runs, in upstream's order:

1. no route or wrong method -> 405 (the app's error handler answers it); OPTIONS -> allowed;
2. authentication: a JWT (or ``none`` mode), else ``?x-nonce=`` (redeemed atomically, the request
   then runs as the nonce's owner with its stored roles), else 400;
3. an actor identifier in the path is resolved (hashid, or an alias in the caller's tenant) -> 404;
4. ``access_control: none`` -> allowed; no Abaco role -> 400; admin role -> allowed;
5. ``admin`` anywhere in the path -> admins only;
6. collection routes (``/actors``, ``/actors/aliases``, ``/actors/utilization``) -> allowed, with
   the privileged-field guard on ``POST /actors``;
7. alias routes -> permission on the alias (and, for alias nonces, on its actor too);
8. actor routes -> guard on POST/PUT, workers POST for admins only, then READ/EXECUTE/UPDATE.

Decisions: a JWT that is present but invalid, with no nonce to fall back on, answers with the JWT
error ("Invalid JWT: …") rather than upstream's generic "No JWT or nonce provided".
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import g, request

from actors import auth, codes, migrations
from actors.controllers.base import form_and_query, form_values, json_body, repeatable_names, single_values
from actors.errors import ActorNotFound, PermissionsException
from actors.models import (
    Alias,
    Nonce,
    Permission,
    alias_id_of,
    dbid_of,
    is_hashid,
    nonce_tenant,
)

log = logging.getLogger(__name__)

NONCE_PARAM = "x-nonce"
READ_METHODS = ("GET", "HEAD")


def authenticate_request() -> None:
    """``before_request`` hook of every authenticated app."""
    migrations.ensure_current()
    if request.url_rule is None:
        return  # the app's 404/405 handler answers 405
    if request.method == "OPTIONS":
        return
    ident = authenticated_identity()
    g.identity = ident
    authorize(ident)


def identity() -> auth.Identity:
    return g.identity


# -- authentication -----------------------------------------------------------------------------
def authenticated_identity() -> auth.Identity:
    """The JWT's identity; else the nonce's, when the request carries one and nonces are accepted."""
    nonce_id = request.args.get(NONCE_PARAM)
    use_nonce = bool(nonce_id) and auth.accepts_nonce()
    try:
        ident = auth.authenticate(dict(request.headers.items()))
    except PermissionsException:
        if not use_nonce:
            raise
        ident = None
    if ident is not None:
        return ident
    if use_nonce:
        return identity_from_nonce(nonce_id)
    if auth.accepts_nonce():
        raise PermissionsException("No JWT or nonce provided.")
    raise PermissionsException("No JWT provided.")


def identity_from_nonce(nonce_id: str) -> auth.Identity:
    """Redeem the nonce for the actor or alias of the URL, in the nonce's tenant."""
    tenant = nonce_tenant(nonce_id)
    nonce = Nonce.redeem(nonce_key(tenant), nonce_id, required_level())
    return auth.Identity(user=nonce["owner"], tenant=tenant, roles=list(nonce.get("roles") or []),
                         nonce_id=nonce_id, nonce_level=nonce.get("level"))


def nonce_key(tenant: str) -> str:
    """Where the URL's nonces live: an actor id means actor nonces, an alias means alias nonces,
    so an actor nonce is never accepted through an alias URL, nor the reverse."""
    args = request.view_args or {}
    if "alias" in args:
        return alias_id_of(tenant, args["alias"])
    identifier = args.get("actor_id")
    if identifier is None:
        raise PermissionsException("A nonce can only be used on an actor or alias URL.")
    return dbid_of(tenant, identifier) if is_hashid(identifier) else alias_id_of(tenant, identifier)


# -- authorization ------------------------------------------------------------------------------
def rule() -> str:
    return request.url_rule.rule if request.url_rule is not None else ""


def is_alias_route() -> bool:
    return rule().startswith("/actors/aliases/<")


def is_messages_route() -> bool:
    return rule().rstrip("/").endswith("/messages")


def is_workers_route() -> bool:
    return "/workers" in rule()


def authorize(ident: auth.Identity) -> None:
    actor_ident = (request.view_args or {}).get("actor_id")
    if actor_ident is not None:
        g.dbid = resolve_actor(actor_ident, ident.tenant)
    if ident.unrestricted:
        return
    if not auth.has_abaco_role(ident):
        raise PermissionsException("Not authorized -- missing required role.")
    if ident.is_admin:
        return
    if "admin" in request.path:
        raise PermissionsException("Not authorized -- Abaco Admin role required.")
    if is_alias_route():
        authorize_alias_route(ident)
    elif actor_ident is not None:
        authorize_actor_route(ident)
    elif request.method == "POST" and rule().rstrip("/") == "/actors":
        check_privileged_fields(ident)


def required_level() -> str:
    """The level the request needs on its actor or alias, whether the caller holds a JWT or a nonce."""
    if request.method in READ_METHODS:
        return codes.READ
    if request.method == "POST" and is_messages_route():
        return codes.EXECUTE
    return codes.UPDATE


def authorize_actor_route(ident: auth.Identity) -> None:
    if request.method in ("POST", "PUT"):
        check_privileged_fields(ident)
        if is_workers_route():
            raise PermissionsException("Not authorized -- only admins may manage workers.")
    if not Permission.allows(g.dbid, ident.user, required_level()):
        raise PermissionsException("Not authorized -- you do not have access to this actor.")


def authorize_alias_route(ident: auth.Identity) -> None:
    """Alias permissions cover the alias only; alias nonces also need the level on the actor."""
    alias = request.view_args["alias"]
    record = Alias.get(ident.tenant, alias)
    level = codes.READ if request.method in READ_METHODS else codes.UPDATE
    alias_ok = Permission.allows(alias_id_of(ident.tenant, alias), ident.user, level)
    if "/nonces" in rule():
        if not (alias_ok and Permission.allows(record["db_id"], ident.user, level)):
            raise PermissionsException("Not authorized -- you do not have access to this alias and actor.")
    elif not alias_ok:
        raise PermissionsException("Not authorized -- you do not have access to this alias.")


def resolve_actor(identifier: str, tenant: str) -> str:
    """An actor id or an alias in the caller's tenant -> the actor's db id (404 if neither)."""
    if is_hashid(identifier):
        return dbid_of(tenant, identifier)
    dbid = Alias.actor_dbid(tenant, identifier)
    if dbid is None:
        raise ActorNotFound(f"Actor with identifier '{identifier}' not found")
    return dbid


# -- privileged-field guard --------------------------------------------------------------
BOOL_FIELD, INT_FIELD, TEXT_FIELD = "bool", "int", "text"
PRIVILEGED_FIELDS = (
    ("privileged", "privileged", BOOL_FIELD, "can make privileged actors"),
    ("max_workers", "maxWorkers", INT_FIELD, "can set max workers"),
    ("max_cpus", "maxCpus", INT_FIELD, "can set max CPUs"),
    ("mem_limit", "memLimit", TEXT_FIELD, "can set mem limit"),
    ("queue", "queue", TEXT_FIELD, "can set queue"),
)
CONTAINER_UID_FIELD = ("use_container_uid", "useContainerUid", BOOL_FIELD, "can use container uid")


def sets_value(kind: str, value: Any) -> bool:
    """Would the request parser turn ``value`` into a set (truthy) field?

    Upstream tested Python truthiness of the raw value, so the form string ``"false"`` counted as
    set and was refused. We read the value the way the parser will (booleans: ``true``/``1``;
    integers: non-zero), so what passes the guard is exactly what the parser stores as unset.
    Text fields (``mem_limit``, ``queue``) are stored as ``str(value)``, so any value but null and
    ``""`` is set, even ``"0"`` or ``default`` (upstream refused ``queue: default`` too). A value
    the parser cannot read counts as set: the guard fails closed.
    """
    if value is None or value == "":
        return False
    if kind == TEXT_FIELD:
        return True
    if value is False:
        return False
    text = str(value).strip().lower()
    if kind == BOOL_FIELD:
        return text not in ("false", "0")
    try:
        return float(text) != 0
    except (ValueError, OverflowError):
        return True


def privileged_field_violation(data: Mapping[str, Any], tas_uid: bool) -> str | None:
    """The denial message for the first privileged field ``data`` sets, or None."""
    fields = PRIVILEGED_FIELDS + ((CONTAINER_UID_FIELD,) if tas_uid else ())
    for snake, camel, kind, what in fields:
        if sets_value(kind, data.get(snake)) or sets_value(kind, data.get(camel)):
            return f"Not authorized -- only admins and privileged users {what}."
    return None


def guarded_request_data() -> dict:
    """What the guard inspects: the fields the parsers will read. Upstream looked at the JSON body
    or the form only, while its parsers also read the query string, so ``?privileged=true`` got
    through; we inspect the query string too, except on message POSTs, whose query parameters are
    environment variables for the actor rather than actor fields."""
    body = json_body()  # malformed JSON -> 400 here, not upstream's 500
    if is_messages_route():
        data: dict[str, Any] = {} if body is not None else single_values(form_values(), "field", repeatable_names())
    else:
        data = form_and_query()  # a field given twice is refused here, before any value is judged
    if isinstance(body, dict):
        data.update(body)
    return data


def check_privileged_fields(ident: auth.Identity) -> None:
    """Only admins and privileged users may set resource fields."""
    if ident.is_privileged:
        return
    message = privileged_field_violation(guarded_request_data(), auth.tas_uid_enabled())
    if message:
        raise PermissionsException(message)
