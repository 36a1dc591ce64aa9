"""Resources of the REST API: parse the request, authorize, call models, shape the response.

The Flask apps (``*_api.py``) only bind routes to the functions here. Request data is read the way
upstream's parsers read it: JSON object first, then form fields and query parameters.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from flask import g, request

from actors import auth, channels, codes, mounts
from actors.config import conf
from actors.errors import DAOError, NotFound, PermissionsException, ResourceError
from actors.models import Actor, Execution, Logs, Permission, Worker, dbid_of, is_hashid, links_base
from actors.responses import convert_keys, convert_model, ok, to_camel, case

log = logging.getLogger(__name__)


# -- request data -------------------------------------------------------------------------------
def json_body() -> Any:
    """The parsed JSON body, or None when the request carries no JSON."""
    if not request.is_json or not request.get_data(cache=True):
        return None
    try:
        return json.loads(request.get_data(cache=True))
    except (ValueError, UnicodeDecodeError):
        raise ResourceError(
            "Unable to process the JSON description. The body is not valid JSON; check its syntax."
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
    return merged


def field_name(name: str) -> str:
    return to_camel(name) if case() == "camel" else name


def as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise ResourceError(f"Invalid value for {name}: {value!r}; use true or false.")


def as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ResourceError(f"Invalid value for {name}: {value!r}; an integer is required.")
    if isinstance(value, (int, float)):
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


# -- authentication and authorization ----------------------------------------------------------
def authenticate_request() -> None:
    """``before_request`` hook of every authenticated app (API ref §4.6)."""
    if request.url_rule is None:
        return  # the app's 404/405 handler answers 405
    if request.method == "OPTIONS":
        return
    identity = auth.authenticate({k: v for k, v in request.headers.items()})
    if identity is None:
        raise PermissionsException("No JWT or nonce provided.")
    if not auth.has_abaco_role(identity):
        raise PermissionsException("Not authorized -- missing required role.")
    g.identity = identity
    if "admin" in request.path and not identity.is_admin:
        raise PermissionsException("Abaco Admin role required.")
    authorize_actor_route(identity)


def authorize_actor_route(identity: auth.Identity) -> None:
    actor_ident = (request.view_args or {}).get("actor_id")
    if actor_ident is None:
        if request.path.rstrip("/").endswith("/actors") and request.method == "POST":
            check_privileged_fields(identity)
        return
    g.dbid = resolve_actor(actor_ident, identity.tenant)
    if identity.is_admin:
        return
    if request.method in ("POST", "PUT"):
        check_privileged_fields(identity)
    level = required_level()
    if not Permission.allows(g.dbid, identity.user, level):
        raise PermissionsException("Not authorized -- you do not have access to this actor.")


def required_level() -> str:
    if request.method == "GET":
        return codes.READ
    if request.method == "POST" and request.path.rstrip("/").endswith("/messages"):
        return codes.EXECUTE
    return codes.UPDATE


PRIVILEGED_FIELDS = (
    ("privileged", "privileged", "can make privileged actors"),
    ("max_workers", "maxWorkers", "can set max workers"),
    ("max_cpus", "maxCpus", "can set max CPUs"),
    ("mem_limit", "memLimit", "can set mem limit"),
    ("queue", "queue", "can set queue"),
)


def check_privileged_fields(identity: auth.Identity) -> None:
    """Only admins and privileged users may set resource fields (API ref §4.5)."""
    if identity.is_privileged:
        return
    body = json_body()
    data = body if isinstance(body, dict) else (request.form if body is None else {})
    for snake, camel, what in PRIVILEGED_FIELDS:
        value = data.get(snake) or data.get(camel)
        if value and not (isinstance(value, str) and value.strip().lower() in ("false", "0") and snake != "queue"):
            raise PermissionsException(f"Not authorized -- only admins and privileged users {what}.")
    if conf().get("workers", "use_tas_uid", ""):
        if data.get("use_container_uid") or data.get("useContainerUid"):
            raise PermissionsException("Not authorized -- only admins and privileged users can use container uid.")


def resolve_actor(identifier: str, tenant: str) -> str:
    """An actor id or an alias in the caller's tenant -> the actor's db id (404 if neither)."""
    if is_hashid(identifier):
        return dbid_of(tenant, identifier)
    raise NotFound(f"Actor with identifier '{identifier}' not found")


def identity() -> auth.Identity:
    return g.identity


# -- actors -------------------------------------------------------------------------------------
def list_actors():
    ident = identity()
    visible = []
    for actor in Actor.list_for_tenant(ident.tenant):
        try:
            if Permission.allows(actor["db_id"], ident.user, codes.READ):
                visible.append(convert_model(Actor.display(actor)))
        except DAOError:
            continue  # upstream failed the whole listing here; one broken record should not
    return ok(visible)


def validate_actor_fields(fields: dict, ident: auth.Identity) -> dict:
    if not fields.get("image"):
        raise ResourceError(
            "Missing required field: {'image': 'The Docker image to use for the actor (required).'}"
        )
    queues = conf().get_list("spawner", "host_queues", ["default"])
    fields.setdefault("queue", "default")
    if fields["queue"] not in queues:
        raise ResourceError(f"Invalid queue name: {fields['queue']}. Valid queues: {', '.join(queues)}.")
    for hint in fields.get("hints", []):
        if any(ch in hint for ch in "\"'{}[]"):
            raise ResourceError(f"Invalid actor description: hints may not contain quotes or brackets: {hint}")
    if fields.get("max_workers") and fields.get("stateless") is False:
        raise ResourceError("Invalid actor description: stateful actors can only have 1 worker.")
    if fields.get("token") is None:
        fields["token"] = default_token(ident.tenant)
    if not fields.get("use_container_uid"):
        for key, value in mounts.container_identity(ident.tenant).items():
            fields[key] = fields.get(key) or value
    fields["mounts"] = mounts.actor_mounts(ident.tenant, ident.user, bool(fields.get("privileged")), fields.get("tasdir"))
    return fields


def default_token(tenant: str) -> bool:
    c = conf()
    for option in (f"{tenant}_default_token", "default_token"):
        value = c.get("web", option, "")
        if value:
            return c.get_bool("web", option, False)
    return False


def create_actor():
    ident = identity()
    fields = validate_actor_fields(parse_fields(request_fields(), ACTOR_FIELD_TYPES), ident)
    actor = Actor.create(ident.tenant, ident.user, fields)
    if conf().get_int("workers", "init_count", 1) > 0:
        ensure_one_worker(actor)
    return ok(convert_model(Actor.display(actor)), "Actor created successfully.")


def get_actor(actor_id: str):
    return ok(convert_model(Actor.display(Actor.get(g.dbid))))


def delete_actor(actor_id: str):
    dbid = g.dbid
    Actor.get(dbid)
    Actor.set_status(dbid, codes.SHUTTING_DOWN)
    stop_workers(dbid, codes.STOP)
    deadline = time.monotonic() + conf().get_float("web", "actor_delete_timeout", 20.0)
    while Worker.get_workers(dbid) and time.monotonic() < deadline:
        time.sleep(0.1)
    remaining = Worker.get_workers(dbid)
    channels.delete_queue(channels.actor_queue_name(dbid))
    Actor.delete(dbid)
    if remaining:
        return ok(None, "Actor deleted successfully; its workers are still being cleaned up.")
    return ok(None, "Actor deleted successfully.")


# -- workers, as the web side sees them ---------------------------------------------------------
def send_start_command(actor: dict, worker_id: str, stop_existing: bool = False) -> None:
    channels.CommandChannel(actor.get("queue") or "default").put(
        {
            "actor_id": actor["db_id"],
            "worker_id": worker_id,
            "image": actor["image"],
            "tenant": actor["tenant"],
            "stop_existing": stop_existing,
        }
    )


def ensure_one_worker(actor: dict) -> str | None:
    worker_id = Worker.request_if_none(actor["db_id"], actor["tenant"])
    if worker_id:
        send_start_command(actor, worker_id)
    return worker_id


def stop_workers(dbid: str, command: str, keep: tuple[str, ...] = ()) -> None:
    """Ask every worker of the actor (but ``keep``) to stop; REQUESTED ones are left to the spawner,
    which drops a request whose worker is SHUTDOWN_REQUESTED."""
    for worker_id, worker in Worker.get_workers(dbid).items():
        if worker_id in keep:
            continue
        try:
            Worker.set_status(dbid, worker_id, codes.SHUTDOWN_REQUESTED)
        except Exception as e:  # the worker may have gone meanwhile
            log.info("worker %s: %s", worker_id, e)
            continue
        if worker.get("status") != codes.REQUESTED:
            channels.WorkerChannel(worker_id).put(command)


# -- messages -----------------------------------------------------------------------------------
def parse_message() -> tuple[Any, str]:
    """The message and its content type, by upstream's first-match rules (API ref §8.6)."""
    body = None
    message_field = request.args.get("message") or request.form.get("message")
    if request.is_json:
        body = json_body()
        if isinstance(body, dict) and body.get("message"):
            message_field = body["message"]
    if message_field:
        return str(message_field), codes.CONTENT_STR
    if request.mimetype == codes.CONTENT_BINARY and request.content_type.split(";")[0].strip() == codes.CONTENT_BINARY:
        return binary_body(), codes.CONTENT_BINARY
    if request.is_json and body:
        return body, codes.CONTENT_JSON
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw), codes.CONTENT_STR
    except (ValueError, UnicodeDecodeError):
        raise ResourceError(
            "The request body could not be serialized. Pass JSON or a 'message' field "
            "(form, query parameter or JSON key)."
        ) from None


def binary_body() -> bytes:
    length = request.headers.get("Content-Length")
    if length is None:
        raise ResourceError("A Content-Length header is required for binary messages.")
    try:
        size = int(length)
    except ValueError:
        raise ResourceError("The Content-Length header must be an integer.") from None
    limit = conf().get_int("web", "max_content_length", 500_000_000)
    if size > limit:
        raise ResourceError(f"The binary message is {size} bytes; the limit is {limit} bytes.")
    return request.get_data(cache=False)


def send_message(actor_id: str):
    ident = identity()
    actor = Actor.get(g.dbid)
    message, content_type = parse_message()
    meta = {k: v for k, v in request.args.items() if k != "message"}
    meta.update(_abaco_username=ident.user, _abaco_api_server=actor["api_server"])
    if ident.jwt_header_name:
        meta["_abaco_jwt_header_name"] = ident.jwt_header_name
    execution = Execution.create(actor, ident.user)
    meta.update(_abaco_execution_id=execution["id"], _abaco_Content_Type=content_type)
    channels.ActorMsgChannel(actor["db_id"]).put_msg(message, meta)
    ensure_one_worker(actor)
    base = links_base(actor["api_server"])
    result = {
        "execution_id": execution["id"],
        "msg": "binary - omitted" if content_type == codes.CONTENT_BINARY else message,
        "_links": {
            "self": f"{base}/{actor['id']}/executions/{execution['id']}",
            "owner": f"{actor['api_server']}/profiles/v2/{actor['owner']}",
            "messages": f"{base}/{actor['id']}/messages",
        },
    }
    return ok(convert_keys(result))


def messages_links(actor: dict) -> dict:
    base = links_base(actor["api_server"])
    return {
        "self": f"{base}/{actor['id']}/messages",
        "owner": f"{actor['api_server']}/profiles/v2/{actor['owner']}",
    }


def count_messages(actor_id: str):
    actor = Actor.get(g.dbid)
    count = channels.queue_message_count(channels.actor_queue_name(actor["db_id"]))
    return ok({"messages": count, "_links": messages_links(actor)})


# -- executions ---------------------------------------------------------------------------------
def list_executions(actor_id: str):
    actor = Actor.get(g.dbid)
    return ok(convert_model(Execution.summary(actor)), "Actor executions retrieved successfully.")


def get_execution(actor_id: str, execution_id: str):
    Actor.get(g.dbid)
    execution = Execution.get(g.dbid, execution_id)
    return ok(convert_model(Execution.display(execution)), "Actor execution retrieved successfully.")


def get_logs(actor_id: str, execution_id: str):
    actor = Actor.get(g.dbid)
    Execution.get(g.dbid, execution_id)
    base = f"{links_base(actor['api_server'])}/{actor['id']}/executions/{execution_id}"
    links = {
        "self": f"{base}/logs",
        "owner": f"{actor['api_server']}/profiles/v2/{actor['owner']}",
        "execution": base,
    }
    return ok({"logs": Logs.get(execution_id), "_links": links}, "Logs retrieved successfully.")

