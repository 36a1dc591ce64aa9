"""The metrics app: ``GET /metrics`` for Prometheus, no authentication.

It runs on a listener of its own (``[web] metrics_address``, ``make up`` starts it), not on the public
port: it names every actor and tenant, so only Prometheus should reach it.

Every scrape reads the current numbers afresh and, when ``[workers] autoscaling`` is true, runs one
autoscaling pass (``actors.autoscaler``) -- Prometheus's periodic GET is the autoscaler's clock, as
upstream. The answer is Prometheus text exposition 0.0.4.

Differences from upstream, on purpose:

* Each scrape builds its metrics in a fresh registry from one snapshot (a custom collector), so
  actors appearing or vanishing between scrapes change the series and never fail the scrape
  (upstream answered 500 on the first scrape after a new actor appeared).
* With autoscaling off, upstream answered a JSON ``null``, which Prometheus -- the only client of
  this endpoint -- cannot parse (the scrape fails and ``up`` drops to 0). We answer the same
  metrics text without running a pass (``abaco_autoscaling_enabled 0``), so an operator can watch
  queues before turning autoscaling on. A missing option means off (upstream: 500).
* The metrics are labelled per actor (``actor_id``, ``tenant``) instead of one metric name per
  actor. Upstream's names (``message_count_for_actor_<dbid>``, ``worker_count_for_actor_<dbid>``,
  ``message_count_for_command_channel{name}``, ``clients_count_for_clients_store``) are still
  emitted, so existing dashboards keep working.
* Per-actor series are emitted for the actors that have workers or queued messages (the ones the
  autoscaler can act on); an idle actor's would all be 0, and with thousands of actors reading and
  writing them made a scrape take seconds. ``abaco_actors{tenant,status}`` counts every actor, read
  from the actors' status index without reading their records (docs/architecture.md, "Store
  layout"). In PromQL, ``abaco_actor_messages{actor_id="..."} or vector(0)`` reads an idle actor as 0.

Metrics (gauges unless said otherwise):

    abaco_actors{tenant,status}                      registered actors per tenant and status
    abaco_actor_messages{actor_id,tenant}            ready messages in the actor's queue
    abaco_actor_workers{actor_id,tenant,status}      workers per status (READY and BUSY always present)
    abaco_actor_max_workers{actor_id,tenant}         the autoscaler's cap for the actor
    abaco_actor_status{actor_id,tenant,status}       1 for the actor's current status
    abaco_command_queue_messages{queue}              spawner commands waiting, per command queue
    abaco_workers                                    worker records of every actor
    abaco_executions_total{status}                   counter: executions that entered each status
    abaco_autoscaling_enabled                        1 when [workers] autoscaling is true
    abaco_autoscaler_pass                            1 if this scrape ran a pass (0: off or another ran)
    abaco_autoscaler_actions{action}                 workers requested / stopped by this scrape's pass
    abaco_metrics_scrape_seconds                     time this scrape took to read and act
    process_*, python_*                              the answering web process (prometheus_client)

With several gunicorn workers, process metrics describe whichever process answered the scrape.
"""
from __future__ import annotations

import logging
import re
import time
from collections import Counter

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from actors import autoscaler, logs, stores
from actors.autoscaler import PassResult, ScaleUp, StopWorker
from actors.lifecycle import WorkerStatus
from actors.models import Actor, Execution, display_id
from actors.responses import new_app

log = logging.getLogger(__name__)

ALWAYS_REPORTED_WORKER_STATUSES = (WorkerStatus.READY, WorkerStatus.BUSY)  # the live ones
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def upstream_metric_suffix(dbid: str) -> str:
    """Upstream's per-actor metric name suffix: the db id with ``-`` (here: anything a metric name
    may not contain) replaced by ``_``."""
    return _NAME_UNSAFE.sub("_", dbid)


class ScrapeCollector:
    """Metrics of one scrape, built from one autoscaler snapshot (a collector per scrape)."""

    def __init__(self, result: PassResult, executions: dict[str, int] | None, clients: int | None,
                 seconds: float, actor_statuses: dict[str, str] | None = None):
        self.result = result
        self.actor_statuses = actor_statuses
        self.executions = executions
        self.clients = clients
        self.seconds = seconds

    def collect(self):
        snapshot, limits = self.result.snapshot, self.result.snapshot.limits
        labels = ["actor_id", "tenant"]
        messages = GaugeMetricFamily("abaco_actor_messages", "Ready messages in the actor's queue.", labels=labels)
        workers = GaugeMetricFamily("abaco_actor_workers", "Workers of the actor per status.",
                                    labels=labels + ["status"])
        caps = GaugeMetricFamily("abaco_actor_max_workers", "Most workers the autoscaler gives the actor.",
                                 labels=labels)
        statuses = GaugeMetricFamily("abaco_actor_status", "1 for the actor's current status.",
                                     labels=labels + ["status"])
        upstream = []
        for actor in snapshot.actors:
            ids = [display_id(actor.dbid), actor.tenant]
            messages.add_metric(ids, actor.messages)
            counts = dict.fromkeys(ALWAYS_REPORTED_WORKER_STATUSES, 0)
            for worker in actor.workers:
                counts[worker.status] = counts.get(worker.status, 0) + 1
            for status, n in sorted(counts.items()):
                workers.add_metric(ids + [status], n)
            caps.add_metric(ids, autoscaler.actor_cap(actor, limits))
            statuses.add_metric(ids + [actor.status or "UNKNOWN"], 1)
            suffix = upstream_metric_suffix(actor.dbid)
            upstream.append(GaugeMetricFamily(f"message_count_for_actor_{suffix}",
                                              f"Number of messages for actor {actor.dbid}", value=actor.messages))
            upstream.append(GaugeMetricFamily(f"worker_count_for_actor_{suffix}",
                                              f"Number of workers for actor {actor.dbid}", value=len(actor.workers)))
        yield from (messages, workers, caps, statuses)
        yield from upstream
        if self.actor_statuses is not None:
            yield actor_counts(self.actor_statuses)

        commands = GaugeMetricFamily("abaco_command_queue_messages", "Spawner commands waiting in the queue.",
                                     labels=["queue"])
        upstream_commands = GaugeMetricFamily("message_count_for_command_channel",
                                              "Number of messages currently in this command channel",
                                              labels=["name"])
        for queue, n in sorted(snapshot.command_queues.items()):
            commands.add_metric([queue], n)
            upstream_commands.add_metric([queue], n)
        yield commands
        yield upstream_commands
        yield GaugeMetricFamily("abaco_workers", "Worker records of every actor.", value=snapshot.worker_total)

        if self.executions is not None:
            executions = CounterMetricFamily("abaco_executions", "Executions that entered each status.",
                                             labels=["status"])
            for status, n in sorted(self.executions.items()):
                executions.add_metric([status], n)
            yield executions
        if self.clients is not None:
            yield GaugeMetricFamily("clients_count_for_clients_store", "Number of clients currently in the "
                                    "clients_store", value=self.clients)

        yield GaugeMetricFamily("abaco_autoscaling_enabled", "1 when [workers] autoscaling is true.",
                                value=int(limits.enabled))
        yield GaugeMetricFamily("abaco_autoscaler_pass", "1 if this scrape ran an autoscaling pass.",
                                value=int(self.result.ran))
        actions = GaugeMetricFamily("abaco_autoscaler_actions", "Actions taken by this scrape's pass.",
                                    labels=["action"])
        actions.add_metric(["scale_up"], sum(isinstance(a, ScaleUp) for a in self.result.actions))
        actions.add_metric(["stop_worker"], sum(isinstance(a, StopWorker) for a in self.result.actions))
        yield actions
        yield GaugeMetricFamily("abaco_metrics_scrape_seconds", "Seconds this scrape took to read and act.",
                                value=self.seconds)


def actor_counts(statuses: dict[str, str]) -> GaugeMetricFamily:
    """``abaco_actors{tenant,status}`` from ``{dbid: status}`` (a db id is ``<tenant>_<hashid>``)."""
    counts = Counter((dbid.rsplit("_", 1)[0], status) for dbid, status in statuses.items())
    family = GaugeMetricFamily("abaco_actors", "Registered actors per tenant and status.", labels=["tenant", "status"])
    for (tenant, status), n in sorted(counts.items()):
        family.add_metric([tenant, status], n)
    return family


def _optional(what: str, fn):
    """Secondary numbers must not fail the scrape that drives the autoscaler."""
    try:
        return fn()
    except Exception:  # noqa: BLE001
        log.warning("metrics: could not read %s", what, exc_info=True)
        return None


def render(result: PassResult, seconds: float) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(result, _optional("execution counters", Execution.status_counts),
                                      _optional("clients count", lambda: len(stores.clients_store)), seconds,
                                      _optional("actor statuses", Actor.statuses)))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return generate_latest(registry)


def metrics() -> Response:
    started = time.monotonic()
    result = autoscaler.run_pass()
    body = render(result, time.monotonic() - started)
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)


logs.setup("metrics")
app = new_app("metrics")
app.add_url_rule("/metrics", view_func=metrics, methods=["GET"])
