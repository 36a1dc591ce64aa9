"""Constants shared by every part of Abaco: permission levels, roles, worker commands, content
types. Statuses and their lifecycles live in ``actors/lifecycle.py``."""

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

# What a new worker answers the spawner on spawner_worker_<id> (SpawnerWorkerChannel)
HANDSHAKE_READY = "ready"
HANDSHAKE_STOPPED = "stopped"  # it was asked to stop before it was ready
HANDSHAKE_ERROR_PREFIX = "error: "

# Message content types as actors see them in _abaco_Content_Type
CONTENT_STR = "str"
CONTENT_JSON = "application/json"
CONTENT_BINARY = "application/octet-stream"

# Aliases may not be these words
RESERVED_ALIAS_WORDS = ("executions", "nonces", "logs", "messages", "adapters", "admin", "utilization")
FORBIDDEN_ALIAS_CHARS = ":/?#[]@!$&'()*+,;="

HASHID_SALT = "eJa5wZlEX4eWU"
