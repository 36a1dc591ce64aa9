"""Every lifecycle of Abaco in one place: actors, workers and executions.

For each kind of object this module holds its status names (upstream's strings, byte for byte:
clients compare them, spaces in worker statuses included), the named groups of statuses that the
agents reason about, and the table of allowed moves. Every status write goes through
:meth:`Lifecycle.check` (the models call it inside the same atomic store operation that writes the
status); a move the table does not allow is refused with :class:`IllegalTransition` and logged.

``docs/architecture.md`` shows these tables, rendered by ``python -m actors.lifecycle`` (which rewrites
them in the document); ``tests/unit/test_lifecycle.py`` walks them whole and checks the document.

A worker that failed is stored as ``ERROR (PREVIOUS <status>)``, saying what it was doing; the tables
treat that whole family as the one status :data:`WorkerStatus.ERROR`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from actors.errors import IllegalTransition

log = logging.getLogger(__name__)


class ActorStatus:
    SUBMITTED = "SUBMITTED"  # registered or updated; no worker has reported ready since
    READY = "READY"  # a worker is running
    ERROR = "ERROR"  # a worker could not be started or the actor cannot run; status_message says why
    SHUTTING_DOWN = "SHUTTING_DOWN"  # being deleted


class WorkerStatus:
    REQUESTED = "REQUESTED"  # recorded; the spawner's command is on its way
    SPAWNER_SETUP = "SPAWNER SETUP"
    PULLING_IMAGE = "PULLING IMAGE"
    CREATING_CONTAINER = "CREATING CONTAINER"
    UPDATING_STORE = "UPDATING STORE"  # upstream's step between the container and READY
    READY = "READY"  # consuming the actor's inbox, idle
    BUSY = "BUSY"  # running an execution
    SHUTDOWN_REQUESTED = "SHUTDOWN_REQUESTED"  # asked to stop; finishes its execution first
    SHUTTING_DOWN = "SHUTTING_DOWN"  # stopping; its record goes next
    ERROR = "ERROR"  # stored as ERROR (PREVIOUS <status>)


class ExecutionStatus:
    SUBMITTED = "SUBMITTED"  # its message is queued
    RUNNING = "RUNNING"  # its container runs
    COMPLETE = "COMPLETE"  # final, whatever the outcome; final_state and exit_code say how it ended


def worker_error_status(previous: str) -> str:
    return f"{WorkerStatus.ERROR} (PREVIOUS {previous})"


def is_worker_error(status: str) -> bool:
    return status.startswith(WorkerStatus.ERROR)


@dataclass(frozen=True)
class Lifecycle:
    """The statuses of one kind of object and the moves between them."""

    kind: str
    initial: str
    transitions: dict[str, frozenset[str]]
    groups: dict[str, frozenset[str]] = field(default_factory=dict)
    # how a stored status maps onto the table (the worker's ERROR family)
    normalize: Callable[[str], str] = str

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(self.transitions)

    def allows(self, current: str | None, new: str) -> bool:
        """``current`` None: the object is being created with ``new``."""
        if current is None:
            return new == self.initial
        return self.normalize(new) in self.transitions.get(self.normalize(current), frozenset())

    def check(self, current: str | None, new: str, what: str = "") -> None:
        """Refuse (and log) a move the table does not allow."""
        if self.allows(current, new):
            return
        label = f"{self.kind} {what}".strip()
        log.warning("refused status change of %s: %r -> %r is not a move of the %s lifecycle",
                    label, current, new, self.kind)
        raise IllegalTransition(f"Invalid status change of {label}: {current} -> {new}.")

    def group(self, name: str) -> frozenset[str]:
        return self.groups[name]

    def in_group(self, status: str | None, name: str) -> bool:
        return status is not None and self.normalize(status) in self.groups[name]


def _moves(table: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    return {status: frozenset(targets) for status, targets in table.items()}


A, W, E = ActorStatus, WorkerStatus, ExecutionStatus

ACTOR = Lifecycle(
    kind="actor",
    initial=A.SUBMITTED,
    transitions=_moves({
        # a worker reports ready -> READY; a worker cannot start -> ERROR; PUT with a new image or
        # force -> SUBMITTED; DELETE -> SHUTTING_DOWN (the record is removed next)
        A.SUBMITTED: {A.READY, A.ERROR, A.SUBMITTED, A.SHUTTING_DOWN},
        A.READY: {A.ERROR, A.SUBMITTED, A.SHUTTING_DOWN},
        A.ERROR: {A.READY, A.ERROR, A.SUBMITTED, A.SHUTTING_DOWN},
        A.SHUTTING_DOWN: set(),
    }),
    groups={
        "unscalable": frozenset({A.ERROR, A.SHUTTING_DOWN}),  # the autoscaler leaves these alone
    },
)

_STARTING = {W.REQUESTED, W.SPAWNER_SETUP, W.PULLING_IMAGE, W.CREATING_CONTAINER, W.UPDATING_STORE}
_STOP = {W.SHUTDOWN_REQUESTED, W.ERROR}

WORKER = Lifecycle(
    kind="worker",
    initial=W.REQUESTED,
    transitions=_moves({
        # the spawner walks a new worker up to CREATING CONTAINER; the worker itself writes READY
        W.REQUESTED: {W.SPAWNER_SETUP} | _STOP,
        W.SPAWNER_SETUP: {W.PULLING_IMAGE} | _STOP,
        W.PULLING_IMAGE: {W.CREATING_CONTAINER} | _STOP,
        W.CREATING_CONTAINER: {W.UPDATING_STORE, W.READY} | _STOP,
        W.UPDATING_STORE: {W.READY} | _STOP,
        W.READY: {W.BUSY, W.SHUTTING_DOWN} | _STOP,
        W.BUSY: {W.READY, W.SHUTTING_DOWN} | _STOP,
        # a stop request is never undone: the worker finishes its execution and shuts down
        W.SHUTDOWN_REQUESTED: {W.SHUTTING_DOWN, W.ERROR},
        W.SHUTTING_DOWN: set(),
        W.ERROR: {W.SHUTDOWN_REQUESTED, W.SHUTTING_DOWN},
    }),
    groups={
        "starting": frozenset(_STARTING),
        "live": frozenset({W.READY, W.BUSY}),
        "stopping": frozenset({W.SHUTDOWN_REQUESTED, W.SHUTTING_DOWN}),
        "failed": frozenset({W.ERROR}),
        # being set up by a spawner right now (a command redelivered in one of these was abandoned)
        "spawning": frozenset({W.SPAWNER_SETUP, W.PULLING_IMAGE, W.CREATING_CONTAINER}),
    },
    normalize=lambda status: W.ERROR if is_worker_error(status) else status,
)

EXECUTION = Lifecycle(
    kind="execution",
    initial=E.SUBMITTED,
    transitions=_moves({
        E.SUBMITTED: {E.RUNNING, E.COMPLETE},  # COMPLETE at once: purged, or failed before its container ran
        # RUNNING again: a redelivered message runs again after its worker was lost mid-way
        E.RUNNING: {E.RUNNING, E.COMPLETE},
        E.COMPLETE: set(),
    }),
    groups={
        "final": frozenset({E.COMPLETE}),
    },
)

LIFECYCLES = (ACTOR, WORKER, EXECUTION)


def markdown() -> str:
    """The lifecycles as the Markdown tables docs/architecture.md carries (kept equal by a test)."""
    parts = []
    for lifecycle in LIFECYCLES:
        parts.append(f"#### {lifecycle.kind.capitalize()}s (initial status `{lifecycle.initial}`)\n")
        parts.append("| from | allowed moves |")
        parts.append("|---|---|")
        for status, targets in lifecycle.transitions.items():
            moves = ", ".join(f"`{t}`" for t in sorted(targets, key=lifecycle.statuses.index)) or "none (final)"
            parts.append(f"| `{status}` | {moves} |")
        parts.append("")
        parts.append("| group | statuses |")
        parts.append("|---|---|")
        for name, members in lifecycle.groups.items():
            listed = ", ".join(f"`{s}`" for s in sorted(members, key=lifecycle.statuses.index))
            parts.append(f"| {name} | {listed} |")
        parts.append("")
    return "\n".join(parts)


DOC_BEGIN, DOC_END = "<!-- lifecycle tables: begin -->", "<!-- lifecycle tables: end -->"


def write_into(path: str) -> None:
    """Replace the tables between the markers of the Markdown file ``path``."""
    with open(path) as f:
        text = f.read()
    head, rest = text.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    with open(path, "w") as f:
        f.write(f"{head}{DOC_BEGIN}\n\n{markdown().strip()}\n\n{DOC_END}{tail}")


if __name__ == "__main__":
    write_into("docs/architecture.md")
    print("docs/architecture.md: lifecycle tables rewritten")
