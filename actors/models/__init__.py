"""Abaco's objects and their lifecycles: actors, workers, executions, logs, nonces, aliases and permissions.

Models return plain data and raise the exceptions of ``errors``; they know nothing of HTTP (how the
API shows a record is ``controllers/views.py``) nor of RabbitMQ (events are ``actors/notify.py``).
Each lifecycle has one function that moves an object between statuses (``Worker.set_status``,
``Execution.set_status``, ``Actor.set_status``), and that function is where the allowed
transitions are checked, atomically with the write.
"""
from actors.models.actor import ACTOR_DEFAULTS, Actor
from actors.models.alias import Alias, alias_id_of
from actors.models.common import (
                                  api_server_for,
                                  dbid_of,
                                  display_id,
                                  display_time,
                                  is_hashid,
                                  new_id,
                                  now_epoch,
                                  page,
)
from actors.models.execution import Execution, Logs
from actors.models.host import Host
from actors.models.nonce import Nonce, nonce_tenant
from actors.models.permission import Permission
from actors.models.worker import Worker

__all__ = [
    "ACTOR_DEFAULTS", "Actor", "Alias", "Execution", "Host", "Logs", "Nonce", "Permission", "Worker", "alias_id_of",
    "api_server_for", "dbid_of", "display_id", "display_time", "is_hashid", "new_id", "nonce_tenant",
    "now_epoch", "page",
]
