"""Resources of the REST API: parse the request, authorize, call models, shape the response.

The Flask apps (``*_api.py``) only bind routes to the functions exported here; each module of this
package holds one family of resources.
"""
from actors.controllers.actors import (
    create_actor,
    delete_actor,
    get_actor,
    get_state,
    list_actors,
    set_state,
    update_actor,
    utilization,
)
from actors.controllers.admin import admin_actors, admin_executions, admin_workers, dashboard
from actors.controllers.aliases import create_alias, delete_alias, get_alias, list_aliases
from actors.controllers.authz import authenticate_request
from actors.controllers.executions import (
    add_execution,
    force_quit_execution,
    get_execution,
    get_logs,
    get_results,
    list_executions,
)
from actors.controllers.messages import count_messages, purge_messages, send_message
from actors.controllers.nonces import (
    create_actor_nonce,
    create_alias_nonce,
    delete_actor_nonce,
    delete_alias_nonce,
    get_actor_nonce,
    get_alias_nonce,
    list_actor_nonces,
    list_alias_nonces,
)
from actors.controllers.permissions import (
    add_actor_permission,
    add_alias_permission,
    get_actor_permissions,
    get_alias_permissions,
)
from actors.controllers.workers import add_workers, delete_worker, get_worker, list_workers

__all__ = [
    # actors, state, executions, messages, workers, admin
    "add_execution", "add_workers", "admin_actors", "admin_executions", "admin_workers", "dashboard",
    "delete_worker", "force_quit_execution", "get_results", "get_state", "get_worker", "list_workers",
    "purge_messages", "set_state", "update_actor", "utilization",
    "authenticate_request", "count_messages", "create_actor", "delete_actor", "get_actor", "get_execution",
    "get_logs", "list_actors", "list_executions", "send_message",
    # nonces, aliases, permissions
    "add_actor_permission", "add_alias_permission", "create_actor_nonce", "create_alias", "create_alias_nonce",
    "delete_actor_nonce", "delete_alias", "delete_alias_nonce", "get_actor_nonce", "get_actor_permissions",
    "get_alias", "get_alias_nonce", "get_alias_permissions", "list_actor_nonces", "list_alias_nonces", "list_aliases",
]
