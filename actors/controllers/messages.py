"""Messages: the hot path that feeds actors.

Synchronous messages: with ``?_abaco_synchronous=true`` (any case)
the POST waits for the execution's first result, returned as ``application/octet-stream``, or for it
to be COMPLETE without one, when the logs are returned as text (Flask's default ``text/html``, as
upstream; ``""`` when there are none). Upstream waited for ever; we wait ``[web] sync_timeout``
seconds (default 300) and then answer **408** with the error envelope, whose ``result`` is the usual
asynchronous answer (``execution_id``, ``_links``): the execution is not cancelled and can be followed
there (a client that retries the POST starts another execution). 408 rather than 400 so that a client
can tell "still running" from a refused request. The wait is event-driven on the results queue
(a consumer that returns as soon as a result arrives), with the execution status read every
``SYNC_STATUS_INTERVAL`` seconds. Upstream's intended precheck (refuse when the mailbox is not
empty) never worked (it read the wrong queue); it stays off, so clients that
worked keep working, and the timeout bounds the wait behind a long mailbox.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from flask import Response, g, jsonify, request

from actors import channels, codes, commands, environment
from actors.config import conf
from actors.controllers import views
from actors.controllers.authz import identity
from actors.controllers.base import check_size, json_body, parse_json, single_values
from actors.errors import ResourceError, TooLarge
from actors.lifecycle import ExecutionStatus
from actors.models import (
    Actor,
    Execution,
    Logs,
)
from actors.responses import convert_keys, envelope, ok

log = logging.getLogger(__name__)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
DEFAULT_SYNC_TIMEOUT = 300.0
SYNC_STATUS_INTERVAL = 0.5  # seconds between looks at the execution status while no result comes
SYNC_TIMEOUT_STATUS = 408


def parse_message() -> tuple[Any, str]:
    """The message and its content type, by upstream's first-match rules."""
    body = None
    message_field = request.args.get("message")
    if request.mimetype in FORM_TYPES:  # reading the form of any other body would read the body
        message_field = message_field or request.form.get("message")
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
        return parse_json(raw), codes.CONTENT_STR
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
        raise TooLarge(f"The binary message is {size} bytes; the limit is {limit} bytes ([web] max_content_length).")
    return request.get_data(cache=False)


def check_runnable(actor: dict, message: Any, content_type: str, meta: dict) -> None:
    """Refuse a message whose container could never start (its environment breaks Docker's or
    Linux's rules): it would fail every attempt on the actor's worker."""
    if content_type != codes.CONTENT_BINARY:
        check_size("max_message_size", message)
    msg = {**meta, "message": message, "_abaco_Content_Type": content_type, "_abaco_execution_id": "x" * 13}
    origin = {name: "query parameter" for name in request.args}
    origin["MSG"] = "message"
    try:
        environment.check(environment.build(actor, msg, worker_id="x" * 13), origin)
    except environment.InvalidEnvironment as e:
        raise ResourceError(str(e)) from None


def send_message(actor_id: str) -> Response:
    ident = identity()
    actor = Actor.get(g.dbid)
    message, content_type = parse_message()
    meta = {k: v for k, v in single_values(request.args, "query parameter").items() if k != "message"}
    meta.update(_abaco_username=ident.user, _abaco_api_server=actor["api_server"])
    if ident.jwt_header_name:
        meta["_abaco_jwt_header_name"] = ident.jwt_header_name
    meta["_abaco_Content_Type"] = content_type
    check_runnable(actor, message, content_type, meta)
    execution = commands.send_message(actor, ident.user, message, meta)
    result = {
        "execution_id": execution["id"],
        "msg": "binary - omitted" if content_type == codes.CONTENT_BINARY else message,
        "_links": views.message_links(actor, execution["id"]),
    }
    if is_synchronous():
        return synchronous_response(actor, execution["id"], result)
    return ok(convert_keys(result))


def is_synchronous() -> bool:
    return str(request.args.get("_abaco_synchronous", "")).strip().lower() == "true"


def synchronous_response(actor: dict, execution_id: str, async_result: dict) -> Response:
    """Wait for the first result or the end of the execution (see the module doc)."""
    dbid = actor["db_id"]
    timeout = conf().get_float("web", "sync_timeout", DEFAULT_SYNC_TIMEOUT)
    deadline = time.monotonic() + timeout
    results = channels.ExecutionResultsChannel(dbid, execution_id)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        result = results.get_result(min(SYNC_STATUS_INTERVAL, remaining))
        if result is not None:
            return Response(result, status=200, mimetype=codes.CONTENT_BINARY)
        if Execution.get(dbid, execution_id).get("status") == ExecutionStatus.COMPLETE:
            # the worker forwards every result before it writes COMPLETE; one more look is enough
            result = results.get_result(0.1)
            if result is not None:
                return Response(result, status=200, mimetype=codes.CONTENT_BINARY)
            return Response(Logs.get(execution_id), status=200, content_type="text/html; charset=utf-8")
    body = envelope(
        convert_keys(async_result),
        f"Synchronous execution {execution_id} did not finish within {timeout:g} seconds ([web] sync_timeout); "
        "it was not cancelled: follow it at the execution's URL.",
        "error",
    )
    response = jsonify(body)
    response.status_code = SYNC_TIMEOUT_STATUS
    return response


def count_messages(actor_id: str) -> Response:
    actor = Actor.get(g.dbid)
    count = channels.ActorMsgChannel(actor["db_id"]).message_count()
    return ok({"messages": count, "_links": views.message_links(actor)})


def purge_messages(actor_id: str) -> Response:
    """Remove the queued (not yet delivered) messages. Upstream left their executions SUBMITTED
    forever; we finalize each as COMPLETE with a ``final_state`` that says it was purged. A message
    a worker already holds is running and is not purged."""
    actor = Actor.get(g.dbid)
    for message in channels.ActorMsgChannel(actor["db_id"]).drain():
        execution_id = message.get("_abaco_execution_id") if isinstance(message, dict) else None
        if execution_id:
            Execution.mark_purged(actor["db_id"], execution_id)
    return ok({"msg": "Actor mailbox purged.", "_links": views.message_links(actor)}, "Mailbox purged successfully.")
