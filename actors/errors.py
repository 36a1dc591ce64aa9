"""Exceptions of the service. Each carries the HTTP status it maps to; models raise them without
knowing HTTP, and the web layer (responses.py) turns them into the error envelope."""


class AbacoError(Exception):
    """Base of every expected error; upstream answers 400 unless a code is given."""

    status_code = 400

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class DAOError(AbacoError):
    """A model could not be built or stored."""


class ResourceError(AbacoError):
    """Bad input to an endpoint."""


class NotFound(AbacoError):
    status_code = 404


class TooLarge(AbacoError):
    """A field or body is larger than its configured limit (413)."""

    status_code = 413


class PermissionsException(AbacoError):
    """Authentication or authorization failed (upstream: 400)."""


class MethodNotAllowed(AbacoError):
    status_code = 405


class WorkerException(AbacoError):
    """A worker record is missing or in the wrong state."""


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
