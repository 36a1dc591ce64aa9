"""The environment of an actor container, and the limits Linux puts on it.

An execution gets its message, the message's query parameters, the actor's ``default_environment``
and state and Abaco's ``_abaco_*`` variables as environment variables. The worker
builds them with :func:`build`; the message endpoint builds the same set before it queues a message
and refuses (400, naming the variable) one that could never start: a container whose environment
Docker or Linux rejects fails every attempt, and used to put the whole actor in ERROR.

The limits are the kernel's: one ``NAME=value`` string may be at most 128 KiB (MAX_ARG_STRLEN,
counting its terminating NUL), and all of them together, with the command line, must fit in a
quarter of the stack limit (2 MiB with the usual 8 MiB stack); we keep 64 KiB of that for the
variables of the image itself. A name may not be empty or contain ``=``; neither part may contain
a NUL character.
"""
from __future__ import annotations

from typing import Any, Mapping

from actors import codes
from actors.models import display_id

MAX_VARIABLE_BYTES = 128 * 1024 - 1  # NAME=value without the NUL that ends it
MAX_TOTAL_BYTES = 2 * 1024 * 1024 - 64 * 1024


class InvalidEnvironment(ValueError):
    """The environment cannot be given to a container; the message names the variable."""


def build(actor: dict, msg: Mapping[str, Any], worker_id: str) -> dict[str, str | None]:
    """The container environment for one message, in upstream's precedence (later wins): the actor's
    ``default_environment``, the message's fields (query parameters and ``_abaco_*`` metadata),
    Abaco's own variables, then ``MSG`` (absent for binary messages, which arrive on the FIFO)."""
    dbid = actor["db_id"]
    env: dict[str, Any] = dict(actor.get("default_environment") or {})
    env.update({k: v for k, v in msg.items() if k != "message"})
    env.update(
        _abaco_access_token="",
        _abaco_actor_dbid=dbid,
        _abaco_actor_id=display_id(dbid),
        _abaco_worker_id=worker_id,
        _abaco_container_repo=actor["image"],
        _abaco_actor_state=actor.get("state", {}),
        _abaco_actor_name=actor.get("name"),
    )
    if env["_abaco_actor_name"] is None:
        env["_abaco_actor_name"] = "None"
    if msg.get("_abaco_Content_Type") != codes.CONTENT_BINARY:
        env["MSG"] = msg.get("message", "")
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def check_variable(name: str, value: str | None, what: str) -> int:
    """Raise for a variable no container can have; return its size in bytes."""
    if not name:
        raise InvalidEnvironment(f"Invalid {what}: an environment variable needs a name (got {value!r:.40}).")
    if "=" in name or "\x00" in name:
        raise InvalidEnvironment(f"Invalid {what} {name[:80]!r}: an environment variable name may not contain "
                                "'=' or a NUL character.")
    if value is not None and "\x00" in value:
        raise InvalidEnvironment(f"Invalid {what} {name[:80]!r}: its value contains a NUL character, which no "
                                "environment variable can hold.")
    size = len(name.encode()) + (0 if value is None else 1 + len(value.encode("utf-8", "surrogatepass")))
    if size > MAX_VARIABLE_BYTES:
        raise InvalidEnvironment(f"Invalid {what} {name[:80]!r}: it is {size} bytes in the container's environment; "
                                f"Linux allows at most {MAX_VARIABLE_BYTES} bytes per variable.")
    return size


def check(env: Mapping[str, str | None], origin: Mapping[str, str] | None = None) -> None:
    """Raise InvalidEnvironment when ``env`` cannot be given to a container. ``origin`` names where a
    variable came from (``message``, ``query parameter``, ...) for the error message."""
    origin = origin or {}
    total = 0
    for name, value in env.items():
        total += check_variable(name, value, origin.get(name, "environment variable")) + 1
    if total > MAX_TOTAL_BYTES:
        raise InvalidEnvironment(f"The container's environment would be {total} bytes; at most {MAX_TOTAL_BYTES} "
                                "bytes fit. Send large data as a binary message (application/octet-stream).")
