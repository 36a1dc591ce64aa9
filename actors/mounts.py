"""Mounts and container identity computed for an actor at registration and update.

Mount specs are ``host_path:container_path:mode`` items separated by commas, with ``{username}``,
``{tenant_id}`` and ``{tasdir}`` substituted. Upstream stored ``mode`` but its runner read
``format``, so read-only mounts ended up read-write; our runner reads ``mode`` (docker_utils).
"""
from __future__ import annotations

import logging
import os

from actors.config import conf

log = logging.getLogger(__name__)

VALID_MODES = ("ro", "rw")


def parse_mount_specs(spec: str, username: str, tenant: str, tasdir: str | None) -> list[dict]:
    mounts = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if "{tasdir}" in item and not tasdir:
            log.info("skipping mount %s: the actor has no tasdir", item)
            continue
        item = item.replace("{username}", username).replace("{tenant_id}", tenant)
        item = item.replace("{tasdir}", tasdir or "")
        parts = item.split(":")
        if len(parts) != 3 or parts[2] not in VALID_MODES:
            log.warning("skipping malformed mount spec %r (want host:container:ro|rw)", item)
            continue
        host_path, container_path, mode = parts
        if not all(os.path.isabs(p) and ".." not in p.split("/") for p in (host_path, container_path)):
            log.warning("skipping mount spec %r: paths must be absolute and may not contain '..'", item)
            continue
        mounts.append({"host_path": host_path, "container_path": container_path, "mode": mode})
    return mounts


def actor_mounts(tenant: str, owner: str, privileged: bool, tasdir: str | None) -> list[dict]:
    c = conf()
    spec = c.get("workers", f"{tenant.lower()}_global_mounts", "") or c.get("workers", "global_mounts", "")
    mounts = parse_mount_specs(spec, owner, tenant, tasdir)
    if privileged:
        mounts += parse_mount_specs(c.get("workers", "privileged_mounts", ""), owner, tenant, tasdir)
    return mounts


def container_identity(tenant: str) -> dict:
    """uid, gid and tasdir from the tenant's fixed ids, else the global ones, else none (image user).
    TAS lookups need TACC's accounting service, which is not reachable from here; they are skipped."""
    c = conf()
    for prefix in (f"{tenant}_", f"{tenant.lower()}_", ""):
        uid = c.get("workers", f"{prefix}actor_uid", "")
        if uid:
            return {
                "uid": uid,
                "gid": c.get("workers", f"{prefix}actor_gid", "") or None,
                "tasdir": c.get("workers", f"{prefix}actor_homedir", "") or None,
            }
    return {"uid": None, "gid": None, "tasdir": None}
