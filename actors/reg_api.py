"""The registration app: actors, their executions and logs (served by gunicorn)."""
from actors import controllers as c
from actors.responses import new_app

app = new_app("reg")
app.before_request(c.authenticate_request)

app.add_url_rule("/actors", view_func=c.list_actors, methods=["GET"])
app.add_url_rule("/actors", view_func=c.create_actor, methods=["POST"], endpoint="create_actor")
app.add_url_rule("/actors/<actor_id>", view_func=c.get_actor, methods=["GET"])
app.add_url_rule("/actors/<actor_id>", view_func=c.delete_actor, methods=["DELETE"])
app.add_url_rule("/actors/<actor_id>/executions", view_func=c.list_executions, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/executions/<execution_id>", view_func=c.get_execution, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/executions/<execution_id>/logs", view_func=c.get_logs, methods=["GET"])
