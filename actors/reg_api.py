"""The registration app: actors, their executions and logs (served by gunicorn)."""
from actors import controllers as c
from actors.responses import new_app

app = new_app("reg")
app.before_request(c.authenticate_request)

app.add_url_rule("/actors", view_func=c.list_actors, methods=["GET"])
app.add_url_rule("/actors", view_func=c.create_actor, methods=["POST"], endpoint="create_actor")
# before /actors/<actor_id>, as upstream registered it (werkzeug also prefers the static path)
app.add_url_rule("/actors/utilization", view_func=c.utilization, methods=["GET"])
app.add_url_rule("/actors/<actor_id>", view_func=c.get_actor, methods=["GET"])
app.add_url_rule("/actors/<actor_id>", view_func=c.update_actor, methods=["PUT"])
app.add_url_rule("/actors/<actor_id>", view_func=c.delete_actor, methods=["DELETE"])
app.add_url_rule("/actors/<actor_id>/state", view_func=c.get_state, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/state", view_func=c.set_state, methods=["POST"])
app.add_url_rule("/actors/<actor_id>/executions", view_func=c.list_executions, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/executions", view_func=c.add_execution, methods=["POST"])
app.add_url_rule("/actors/<actor_id>/executions/<execution_id>", view_func=c.get_execution, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/executions/<execution_id>", view_func=c.force_quit_execution,
                 methods=["DELETE"])
app.add_url_rule("/actors/<actor_id>/executions/<execution_id>/logs", view_func=c.get_logs, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/executions/<execution_id>/results", view_func=c.get_results,
                 methods=["GET"])

# nonces
app.add_url_rule("/actors/<actor_id>/nonces", view_func=c.list_actor_nonces, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/nonces", view_func=c.create_actor_nonce, methods=["POST"])
app.add_url_rule("/actors/<actor_id>/nonces/<nonce_id>", view_func=c.get_actor_nonce, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/nonces/<nonce_id>", view_func=c.delete_actor_nonce, methods=["DELETE"])

# aliases and their nonces
app.add_url_rule("/actors/aliases", view_func=c.list_aliases, methods=["GET"])
app.add_url_rule("/actors/aliases", view_func=c.create_alias, methods=["POST"])
app.add_url_rule("/actors/aliases/<alias>", view_func=c.get_alias, methods=["GET"])
app.add_url_rule("/actors/aliases/<alias>", view_func=c.delete_alias, methods=["DELETE"])
app.add_url_rule("/actors/aliases/<alias>/nonces", view_func=c.list_alias_nonces, methods=["GET"])
app.add_url_rule("/actors/aliases/<alias>/nonces", view_func=c.create_alias_nonce, methods=["POST"])
app.add_url_rule("/actors/aliases/<alias>/nonces/<nonce_id>", view_func=c.get_alias_nonce, methods=["GET"])
app.add_url_rule("/actors/aliases/<alias>/nonces/<nonce_id>", view_func=c.delete_alias_nonce, methods=["DELETE"])
