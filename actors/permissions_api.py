"""Permission routes of actors and aliases.

Upstream serves these from its admin app; they live in their own small app here so the admin app
stays about workers and cluster listings. ``app.py`` routes ``/actors/…/permissions`` to it in
nginx's order.
"""
from actors import controllers as c
from actors.responses import new_app

app = new_app("permissions")
app.before_request(c.authenticate_request)

app.add_url_rule("/actors/<actor_id>/permissions", view_func=c.get_actor_permissions, methods=["GET"])
app.add_url_rule("/actors/<actor_id>/permissions", view_func=c.add_actor_permission, methods=["POST"])
app.add_url_rule("/actors/aliases/<alias>/permissions", view_func=c.get_alias_permissions, methods=["GET"])
app.add_url_rule("/actors/aliases/<alias>/permissions", view_func=c.add_alias_permission, methods=["POST"])
