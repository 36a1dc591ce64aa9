"""Constants shared by every part of Abaco: statuses, permission levels, roles.

Status strings are upstream's, byte for byte (clients compare them), including the spaces in
worker statuses and the ``ERROR (PREVIOUS <status>)`` form.
"""

# Actor statuses
SUBMITTED = "SUBMITTED"
READY = "READY"
ERROR = "ERROR"
SHUTTING_DOWN = "SHUTTING_DOWN"

# Worker statuses (READY and SHUTTING_DOWN are shared with actors)
REQUESTED = "REQUESTED"
SPAWNER_SETUP = "SPAWNER SETUP"
PULLING_IMAGE = "PULLING IMAGE"
CREATING_CONTAINER = "CREATING CONTAINER"
UPDATING_STORE = "UPDATING STORE"
BUSY = "BUSY"
SHUTDOWN_REQUESTED = "SHUTDOWN_REQUESTED"

# The start-up chain a worker must follow in order (any status may go to SHUTDOWN_* or ERROR).
WORKER_START_CHAIN = {
    REQUESTED: {SPAWNER_SETUP},
    SPAWNER_SETUP: {PULLING_IMAGE},
    PULLING_IMAGE: {CREATING_CONTAINER},
    # upstream's spawner skipped UPDATING STORE by overwriting the record; we allow both paths
    CREATING_CONTAINER: {UPDATING_STORE, READY},
    UPDATING_STORE: {READY},
}


def worker_error_status(previous: str) -> str:
    return f"{ERROR} (PREVIOUS {previous})"


def is_worker_error(status: str) -> bool:
    return status.startswith(ERROR)


# Execution statuses
RUNNING = "RUNNING"
COMPLETE = "COMPLETE"
FINAL_EXECUTION_STATUSES = {COMPLETE}

# Permission levels, in order
PERMISSION_LEVELS = ("NONE", "READ", "EXECUTE", "UPDATE")
NONE, READ, EXECUTE, UPDATE = PERMISSION_LEVELS
ABACO_WORLD = "ABACO_WORLD"


def level_rank(level: str) -> int:
    return PERMISSION_LEVELS.index(level)


# Roles
ALL_ROLE = "ALL"
ADMIN_ROLE = "Internal/abaco-admin"
PRIVILEGED_ROLE = "Internal/abaco-privileged"
LIMITED_ROLE = "Internal/abaco-limited"
DEFAULT_USER_ROLE = "Internal/abaco-user"
EVERYONE_ROLE = "Internal/everyone"

# Worker control commands (WorkerChannel)
STOP = "stop"
STOP_NO_DELETE = "stop-no-delete"
FORCE_QUIT = "force_quit"
STATUS_PING = "status"

# Message content types as actors see them in _abaco_Content_Type
CONTENT_STR = "str"
CONTENT_JSON = "application/json"
CONTENT_BINARY = "application/octet-stream"

# Aliases may not be these words
RESERVED_ALIAS_WORDS = ("executions", "nonces", "logs", "messages", "adapters", "admin", "utilization")
FORBIDDEN_ALIAS_CHARS = ":/?#[]@!$&'()*+,;="

HASHID_SALT = "eJa5wZlEX4eWU"
