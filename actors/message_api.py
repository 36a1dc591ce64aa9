"""The messages app: the hot path that feeds actors (served by gunicorn)."""
from actors import controllers as c
from actors.responses import new_app

app = new_app("mes")
app.before_request(c.authenticate_request)

app.add_url_rule("/actors/<actor_id>/messages", view_func=c.count_messages, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/messages", view_func=c.send_message, methods=["POST"])
app.add_url_rule("/actors/<actor_id>/messages", view_func=c.purge_messages, methods=["DELETE"])
