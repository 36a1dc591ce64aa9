"""The errors of the service, one class per case. They carry no HTTP status: models and agents raise
them without knowing HTTP, and the web layer (``responses.HTTP_STATUS``) decides the code."""


class AbacoError(Exception):
    """Base of every expected error; its message is what the caller reads."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class DAOError(AbacoError):
    """A model refused the data it was given (bad level, bad alias, a collision)."""


class ResourceError(AbacoError):
    """Bad input to an endpoint."""


class PermissionsException(AbacoError):
    """Authentication or authorization failed."""


class TooLarge(AbacoError):
    """A field or body is larger than its configured limit."""


class MethodNotAllowed(AbacoError):
    """No route of this path takes this method."""


# -- "not found": one class per kind of record -----------------------------------------------------
class NotFound(AbacoError):
    """Something the request names does not exist."""


class ActorNotFound(NotFound):
    pass


class AliasNotFound(NotFound):
    pass


class ExecutionNotFound(NotFound):
    pass


class NonceNotFound(NotFound):
    pass


class PermissionsNotFound(NotFound):
    """The object has no permission map (it does not exist)."""


class WorkerException(AbacoError):
    """A worker record is missing or in the wrong state."""


class WorkerNotFound(WorkerException, NotFound):
    pass


# -- the object's state forbids the change ---------------------------------------------------------
class Conflict(AbacoError):
    """The change is not possible from the object's current state."""


class WorkerStatusConflict(WorkerException, Conflict):
    """The worker is not in one of the statuses the change requires."""


class IllegalTransition(Conflict):
    """A status change the object's lifecycle does not allow (actors/lifecycle.py)."""


# -- Docker ----------------------------------------------------------------------------------------
class DockerError(Exception):
    """Anything that went wrong talking to the Docker daemon."""


class DockerStartContainerError(DockerError):
    """The actor container could not be started. ``caused_by_message``: Docker refused what this one
    message put in the container (its environment), so retrying it, or any other message, is useless
    or unaffected; otherwise the cause may be the host and the message may be retried."""

    def __init__(self, message: str, caused_by_message: bool = False):
        super().__init__(message)
        self.caused_by_message = caused_by_message


class DockerStopContainerError(DockerError):
    """A container could not be stopped."""


class DockerOutcomeUnknown(DockerError):
    """The actor container started, but the daemon did not tell how it ended: it stopped answering
    (typically: the host is going down) or answered the supervising calls with an error. The
    execution has no outcome to record; its container, if the daemon keeps it, is left for a later
    attempt to adopt."""
