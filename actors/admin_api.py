"""The admin app: workers of an actor and the cross-tenant admin views (served by gunicorn).

Permissions routes, which upstream's admin app also served, live in ``permissions_api``; app.py
routes each path to its app in nginx's order.
"""
from actors import controllers as c
from actors.responses import new_app

app = new_app("admin")
app.before_request(c.authenticate_request)

# workers of an actor
app.add_url_rule("/actors/<actor_id>/workers", view_func=c.list_workers, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/workers", view_func=c.add_workers, methods=["POST"])
app.add_url_rule("/actors/<actor_id>/workers/<worker_id>", view_func=c.get_worker, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/workers/<worker_id>", view_func=c.delete_worker, methods=["DELETE"])

# cross-tenant views, admin role only
app.add_url_rule("/actors/admin", view_func=c.admin_actors, methods=["GET"])
app.add_url_rule("/actors/admin/workers", view_func=c.admin_workers, methods=["GET"])
app.add_url_rule("/actors/admin/executions", view_func=c.admin_executions, methods=["GET"])
app.add_url_rule("/admin/dashboard", view_func=c.dashboard, methods=["GET", "POST"])
