"""Actors: registration, listing, reading, update, deletion, state and utilization."""
from __future__ import annotations

import logging
import re
import time
from typing import Any

from flask import Response, g, request

from actors import auth, channels, codes, environment, mounts, webhooks
from actors.commands import ensure_one_worker, send_start_command, stop_workers
from actors.config import conf
from actors.controllers import views
from actors.controllers.authz import identity, resolve_actor
from actors.controllers.base import (
    ACTOR_FIELD_TYPES,
    as_force,
    check_size,
    json_body,
    paging,
    parse_fields,
    request_fields,
)
from actors.errors import ActorNotFound, NotFound, PermissionsNotFound, ResourceError
from actors.lifecycle import ActorStatus
from actors.models import (
    Actor,
    Permission,
    Worker,
    page,
)
from actors.responses import convert_model, ok

log = logging.getLogger(__name__)

FORBIDDEN_HINT_CHARS = "\"'{}[]"
INVALID_LINK = (
    "Invalid link parameter; unable to retrieve linked actor data. The link must be a valid actor id or "
    "alias for which you have EXECUTE permission."
)


def list_actors() -> Response:
    """The caller's readable actors, oldest first; ``limit``/``skip`` page them. An actor without a
    permission map is left out (upstream failed the whole listing on one such record)."""
    ident = identity()
    offset, limit = paging()
    actors = page(Actor.readable_by(ident.tenant, ident.user), offset, limit)
    return ok([convert_model(views.actor_view(a)) for a in actors])


# -- validation (in upstream's order) ---------------------------------------------
def validate_actor_fields(fields: dict, ident: auth.Identity, owner: str | None = None,
                          dbid: str | None = None) -> dict:
    """Check and complete the fields of a POST (``dbid`` None) or PUT of the actor ``dbid``."""
    owner = owner or ident.user
    require_image(fields)
    validate_sizes(fields)
    validate_queue(fields)
    if fields.get("link"):
        validate_link(fields["link"], ident, dbid)
    if fields.get("webhook"):
        validate_webhook(fields["webhook"])
    validate_hints(fields.get("hints", []))
    if fields.get("max_workers") and fields.get("stateless") is False:
        raise ResourceError("Invalid actor description: stateful actors can only have 1 worker.")
    if fields.get("token") is None:
        fields["token"] = default_token(ident.tenant)
    if not fields.get("use_container_uid"):
        for key, value in mounts.container_identity(ident.tenant).items():
            fields[key] = fields.get(key) or value
    fields["mounts"] = mounts.actor_mounts(ident.tenant, owner, bool(fields.get("privileged")), fields.get("tasdir"))
    return fields


# Docker's image reference grammar (distribution/reference): [registry[:port]/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
IMAGE_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?$"
)


def require_image(fields: dict) -> None:
    if not fields.get("image"):
        raise ResourceError(
            "Missing required field: {'image': 'The Docker image to use for the actor (required).'}"
        )
    # upstream stored any string and failed later in the spawner; a name Docker can never resolve
    # is refused here, before anything is written
    image = fields["image"]
    if len(image) > 255 or not IMAGE_REFERENCE.match(image):
        raise ResourceError(f"Invalid image: {image[:300]!r} is not a valid Docker image reference.")


MAX_NAME_LENGTH = 1024
MAX_HINTS, MAX_HINT_LENGTH = 64, 256


def validate_sizes(fields: dict) -> None:
    """Nothing a user registers may grow the store without bound (413 for the configured limits)."""
    if fields.get("description"):
        check_size("max_description_size", fields["description"])
    if fields.get("state"):
        check_size("max_state_size", fields["state"])
    if len(fields.get("name") or "") > MAX_NAME_LENGTH:
        raise ResourceError(f"Invalid name: at most {MAX_NAME_LENGTH} characters.")
    hints = fields.get("hints") or []
    if len(hints) > MAX_HINTS or any(len(h) > MAX_HINT_LENGTH for h in hints):
        raise ResourceError(f"Invalid hints: at most {MAX_HINTS} hints of at most {MAX_HINT_LENGTH} characters each.")
    defaults = fields.get("default_environment") or {}
    try:
        environment.check({str(k): None if v is None else str(v) for k, v in defaults.items()},
                          dict.fromkeys(map(str, defaults), "default_environment variable"))
    except environment.InvalidEnvironment as e:
        raise ResourceError(str(e)) from None


def validate_queue(fields: dict) -> None:
    """A queue must be one of ``[spawner] host_queues``: the queues the deployment's compute hosts
    serve (a spawner started with env ``queue=<name>`` consumes ``command_channel_<name>``)."""
    queues = conf().get_list("spawner", "host_queues", ["default"])
    fields.setdefault("queue", "default")
    queue = fields["queue"]
    if queue not in queues:
        raise ResourceError(f"Invalid queue name: {queue}. Valid queues: {', '.join(queues)}.")



def validate_hints(hints: list[str]) -> None:
    for hint in hints:
        if any(ch in hint for ch in FORBIDDEN_HINT_CHARS):
            raise ResourceError(f"Invalid actor description: hints may not contain quotes or brackets: {hint}")


def validate_link(link: str, ident: auth.Identity, dbid: str | None) -> None:
    """The linked actor must exist in the caller's tenant and the caller must be able to send it
    messages. Upstream ignored the result of that permission check, so anyone could
    make their actor feed events into any actor of the tenant; we enforce EXECUTE (admins pass).
    On a PUT the actor may not link to itself nor close a cycle of links."""
    try:
        link_dbid = resolve_actor(link, ident.tenant)
    except ActorNotFound:
        raise ResourceError(f"{INVALID_LINK} No actor or alias {link} was found.") from None
    if not Actor.exists(link_dbid):
        raise ResourceError(f"{INVALID_LINK} No actor {link} was found.")
    if dbid is not None and link_dbid == dbid:
        raise ResourceError("Invalid link parameter: an actor cannot link to itself.")
    try:
        allowed = ident.is_admin or Permission.allows(link_dbid, ident.user, codes.EXECUTE)
    except PermissionsNotFound as e:
        raise ResourceError(f"{INVALID_LINK} {e.message}") from None
    if not allowed:
        raise ResourceError(f"{INVALID_LINK} You do not have EXECUTE permission on {link}.")
    if dbid is not None and link_creates_cycle(dbid, link_dbid, ident.tenant):
        raise ResourceError("Invalid link parameter: this update would result in a cycle of linked actors.")


MAX_URL_LENGTH = 2048


def validate_webhook(url: str) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise ResourceError(f"Invalid webhook: at most {MAX_URL_LENGTH} characters.")
    try:
        webhooks.validate_url(url)
    except ValueError as e:
        raise ResourceError(f"Invalid webhook {url[:300]!r}: {e}.") from None


def link_creates_cycle(dbid: str, link_dbid: str, tenant: str) -> bool:
    """Would the edge ``dbid -> link_dbid`` close a cycle in the tenant's graph of links?"""
    edges = link_graph(tenant)
    edges[dbid] = link_dbid
    node, seen = link_dbid, {dbid}
    while node in edges:
        if node in seen:
            return node == dbid
        seen.add(node)
        node = edges[node]
    return node == dbid


def link_graph(tenant: str) -> dict[str, str]:
    """``{actor dbid: dbid of the actor it links to}`` for every linked actor of the tenant; links
    that no longer resolve (a deleted alias) are no edges."""
    edges = {}
    for actor in Actor.list_for_tenant(tenant):
        if not actor.get("link"):
            continue
        try:
            edges[actor["db_id"]] = resolve_actor(actor["link"], tenant)
        except ActorNotFound:
            continue
    return edges


def default_token(tenant: str) -> bool:
    c = conf()
    for option in (f"{tenant}_default_token", "default_token"):
        value = c.get("web", option, "")
        if value:
            return c.get_bool("web", option, False)
    return False


# -- resources ----------------------------------------------------------------------------------
def create_actor() -> Response:
    ident = identity()
    fields = validate_actor_fields(parse_fields(request_fields(), ACTOR_FIELD_TYPES), ident)
    actor = Actor.create(ident.tenant, ident.user, fields)
    if conf().get_int("workers", "init_count", 1) > 0:
        ensure_one_worker(actor)
    return ok(convert_model(views.actor_view(actor)), "Actor created successfully.")


def get_actor(actor_id: str) -> Response:
    return ok(convert_model(views.actor_view(Actor.get(g.dbid))))


def update_actor(actor_id: str) -> Response:
    """PUT: full replacement of the user fields."""
    ident = identity()
    previous = Actor.get(g.dbid)
    data = request_fields()
    fields = parse_fields(data, ACTOR_FIELD_TYPES)
    fields.pop("status", None)  # server-managed on PUT
    require_image(fields)
    check_stateful_update(previous, fields)
    fields = validate_actor_fields(fields, ident, owner=previous["owner"], dbid=g.dbid)
    restart = as_force(data.get("force", False)) or fields["image"] != previous["image"]
    actor = Actor.replace(g.dbid, fields, restart)
    if restart:
        # the spawner stops the older workers (stop-no-delete) once the new one runs
        send_start_command(actor, Worker.request(g.dbid, actor["tenant"]), stop_existing=True)
    if previous["owner"] != ident.user:
        Actor.grant(g.dbid, ident.user, codes.UPDATE, actor)
    return ok(convert_model(views.actor_view(actor)), "Actor updated successfully.")


def check_stateful_update(previous: dict, fields: dict) -> None:
    """A stateful actor stays stateful (clients must resend ``stateless: false``) and keeps one worker."""
    if previous.get("stateless", True):
        return
    if fields.get("stateless", True):
        raise ResourceError(
            "Invalid actor description: a stateful actor cannot be made stateless; "
            "send stateless: false to update it."
        )
    if fields.get("max_workers"):
        raise ResourceError("Invalid actor description: stateful actors can only have 1 worker.")


def delete_actor(actor_id: str) -> Response:
    dbid = g.dbid
    if Actor.get(dbid).get("status") != ActorStatus.SHUTTING_DOWN:  # a repeated DELETE goes on
        Actor.set_status(dbid, ActorStatus.SHUTTING_DOWN)
    stop_workers(dbid, codes.STOP)
    deadline = time.monotonic() + conf().get_float("web", "actor_delete_timeout", 20.0)
    while Worker.get_workers(dbid) and time.monotonic() < deadline:
        time.sleep(0.1)
    remaining = Worker.get_workers(dbid)
    channels.ActorMsgChannel(dbid).delete()
    Actor.delete(dbid)
    if remaining:
        return ok(None, "Actor deleted successfully; its workers are still being cleaned up.")
    return ok(None, "Actor deleted successfully.")


# -- state -----------------------------------------------------------------------
def get_state(actor_id: str) -> Response:
    actor = Actor.get(g.dbid)
    return ok({"state": actor.get("state", {})}, "Actor state retrieved successfully.")


def set_state(actor_id: str) -> Response:
    actor = Actor.get(g.dbid)
    if actor.get("stateless", True):
        raise NotFound("Invalid request: actor is stateless; only stateful actors have a state.")
    actor = Actor.set_state(g.dbid, state_from_body())
    return ok(convert_model(views.actor_view(actor)), "State updated successfully.")


def state_from_body() -> Any:
    """Any truthy JSON value sent with a JSON content type; anything else is a 400."""
    state = json_body() if request.is_json else None
    if not state:
        raise ResourceError("Invalid actor state description: state must be JSON serializable and not empty.")
    check_size("max_state_size", state)
    return state


# -- utilization -----------------------------------------------------------------
def utilization() -> Response:
    """Cross-tenant counts; the keys are camelCase in both case modes, as upstream."""
    workers = Worker.all_by_actor()
    result = {
        "currentActors": Actor.count(),
        "totalActors": len(workers),
        "workers": sum(len(w) for w in workers.values()),
        "commandQueue": channels.CommandChannel("default").message_count(),
    }
    return ok(result, "Abaco utilization retrieved successfully.")
