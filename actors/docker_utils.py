"""Every call to the Docker daemon (docker SDK), and nothing else. No other module imports ``docker``."""
from __future__ import annotations

import datetime
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from actors.accounting import Usage
from actors.config import conf, host_id, tag
from actors.errors import DockerError, DockerOutcomeUnknown, DockerStartContainerError, DockerStopContainerError

log = logging.getLogger(__name__)

ROLE_LABEL = "org.abaco.role"
ACTOR_LABEL = "org.abaco.actor"
WORKER_LABEL = "org.abaco.worker"
EXECUTION_LABEL = "org.abaco.execution"
# the [spawner] host_id of the agents that made the container: each host's health agent (and
# scripts/down.sh) removes only its own, so two stacks can share one Docker daemon
HOST_LABEL = "org.abaco.host_id"
# a standby worker container ([spawner] standby_workers): its id, and the command queue of the
# spawner whose pool it is in; its actor and worker are known only once it is assigned
STANDBY_LABEL = "org.abaco.standby"
POOL_LABEL = "org.abaco.pool"

WORKER_CGROUP_ROOT = "/host_cgroup"
# seconds a supervised container's daemon may be unreachable before the outcome is given up for lost
DAEMON_LOST_AFTER = 30.0

_client: docker.DockerClient | None = None
_client_lock = threading.Lock()


def daemon_url() -> str:
    return conf().get("docker", "dd", "unix://var/run/docker.sock")


def client() -> docker.DockerClient:
    """One client per process; the SDK's HTTP session is safe to share between threads."""
    global _client
    with _client_lock:
        if _client is None:
            _client = docker.DockerClient(base_url=daemon_url(), version="auto", timeout=60)
        return _client


def socket_path() -> str:
    url = daemon_url()
    return "/" + url.split("://", 1)[1].lstrip("/") if url.startswith("unix://") else "/var/run/docker.sock"


# -- images -------------------------------------------------------------------------------------
def split_image(image: str) -> tuple[str, str]:
    """``repo[:tag]`` -> (repo, tag); an untagged name means ``latest`` (upstream pulled every tag)."""
    if "@" in image:
        return image, ""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag
    return image, "latest"


def image_exists(image: str) -> bool:
    try:
        client().images.get(image)
        return True
    except ImageNotFound:
        return False
    except (APIError, DockerException) as e:
        raise DockerError(f"Could not inspect image {image}: {e}") from e


def pull_image(image: str) -> None:
    repo, tag = split_image(image)
    try:
        client().images.pull(repo, tag=tag or None)
    except (APIError, DockerException) as e:
        raise DockerError(f"Could not pull image {image}: {explain(e)}") from e


def ensure_image(image: str) -> None:
    """Make ``image`` available under ``[docker] pull_policy``: ``always`` (pull; a local copy is used
    when the pull fails), ``if-not-present`` or ``never``."""
    policy = conf().get("docker", "pull_policy", "always").strip().lower()
    if policy == "never":
        if not image_exists(image):
            raise DockerError(f"Image {image} is not available on this host and the pull policy is 'never'.")
        return
    if policy == "if-not-present" and image_exists(image):
        return
    try:
        pull_image(image)
    except DockerError:
        if image_exists(image):
            log.warning("pull of %s failed; using the local image", image)
            return
        raise


def explain(e: Exception) -> str:
    return getattr(e, "explanation", None) or str(e)


# -- worker containers --------------------------------------------------------------------------
def core_image() -> str:
    c = conf()
    repo = c.environ.get("AE_IMAGE") or c.get("docker", "core_image", "abaco/core")
    return repo if ":" in repo.rsplit("/", 1)[-1] else f"{repo}{tag()}"


def network_kwargs(network: str) -> dict:
    if not network:
        return {}
    if network in ("host", "none", "bridge"):
        return {"network_mode": network}
    return {"network": network}


def container_name(*parts: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", "_".join(parts))


def worker_container_setup(environment: dict) -> tuple[dict, dict]:
    """The volumes and environment every worker container gets (a standby's too)."""
    c = conf()
    conf_host_path = c.environ.get("abaco_conf_host_path") or c.get("spawner", "abaco_conf_host_path", "") or c.path
    if not conf_host_path or not os.path.isfile(conf_host_path):
        raise DockerError(f"The configuration file to give workers was not found: {conf_host_path!r}.")
    volumes = {
        # at the same path, so the worker's [docker] dd (handed on through env overrides) reaches it
        socket_path(): {"bind": socket_path(), "mode": "rw"},
        conf_host_path: {"bind": "/service.conf", "mode": "ro"},
    }
    for option in ("socket_host_path_dir", "fifo_host_path_dir"):
        path = c.get("workers", option, "")
        if path:
            volumes[path] = {"bind": path, "mode": "rw"}
    log_dir = c.get("logs", "host_dir", "")
    if log_dir:
        volumes[log_dir] = {"bind": log_dir, "mode": "rw"}
    cgroup_root = c.get("workers", "cgroup_root", "/sys/fs/cgroup")
    environment = {**environment, "ABACO_CONF": "/service.conf"}
    if os.path.isdir(cgroup_root):
        # the worker reads its actor containers' cgroup counters (CgroupAccounting) through this
        volumes[cgroup_root] = {"bind": WORKER_CGROUP_ROOT, "mode": "rw"}
        environment["workers_cgroup_root"] = WORKER_CGROUP_ROOT
    return volumes, environment


def _create_core_container(name: str, labels: dict, environment: dict) -> str:
    c = conf()
    volumes, environment = worker_container_setup(environment)
    try:
        container = client().containers.create(
            core_image(),
            command=["python3", "-m", "actors.worker"],
            name=name,
            environment=environment,
            volumes=volumes,
            labels={HOST_LABEL: host_id(), **labels},
            auto_remove=c.get_bool("workers", "auto_remove", True),
            detach=True,
            **network_kwargs(c.get("spawner", "docker_network", "")),
        )
    except (APIError, DockerException) as e:
        raise DockerError(f"Could not create the worker container: {explain(e)}") from e
    return container.id


def create_worker_container(actor_dbid: str, worker_id: str, environment: dict) -> str:
    """Create (not start) the worker container; returns its id."""
    return _create_core_container(container_name("worker", actor_dbid, worker_id),
                                  {ROLE_LABEL: "worker", ACTOR_LABEL: actor_dbid, WORKER_LABEL: worker_id},
                                  environment)


def create_standby_container(standby_id: str, pool: str, environment: dict) -> str:
    """Create (not start) a standby worker container of the spawner pool ``pool`` (its command
    queue); returns its id. It waits for the worker it is to become (actors/standby.py)."""
    return _create_core_container(container_name("standby", host_id(), pool, standby_id),
                                  {ROLE_LABEL: "standby", POOL_LABEL: pool, STANDBY_LABEL: standby_id},
                                  environment)


def start_container(cid: str) -> None:
    try:
        client().api.start(cid)
    except (APIError, DockerException) as e:
        raise DockerStartContainerError(f"Could not start container {cid[:12]}: {explain(e)}") from e


def remove_container(cid: str) -> None:
    """Force-remove a container; a container that is already gone is fine."""
    try:
        client().api.remove_container(cid, force=True)
    except NotFound:
        pass
    except APIError as e:
        if "is already in progress" not in str(e):
            raise DockerError(f"Could not remove container {cid[:12]}: {explain(e)}") from e


def container_logs(cid: str, tail: int | str = "all") -> str:
    try:
        return client().api.logs(cid, stdout=True, stderr=True, tail=tail).decode("utf-8", "replace")
    except (APIError, DockerException, requests.exceptions.RequestException):
        return ""


def container_running(cid: str) -> bool:
    try:
        return bool(client().api.inspect_container(cid)["State"]["Running"])
    except NotFound:
        return False


def container_running_or_unknown(cid: str) -> bool:
    """Whether the container runs; True when the daemon cannot say: an agent must not take a daemon
    hiccup for a dead container."""
    try:
        return container_running(cid)
    except Exception as e:  # noqa: BLE001 - any failure to ask means "unknown"
        log.warning("could not inspect container %s: %s", cid[:12], e)
        return True


def list_containers(**labels: str) -> list[dict]:
    filters = {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}
    return client().api.containers(all=True, filters=filters)


def container_events(role: str, actions: list[str], host: str):
    """Docker's events for the containers of one Abaco role (``worker``, ``standby`` or ``actor``; ""
    for all three) made on ``host`` (a host id), as they happen: iterate it for event dicts,
    ``close()`` it to stop. Raises DockerError if the daemon is out of reach."""
    try:
        return client().events(decode=True, filters={
            "type": "container", "event": actions,
            "label": [f"{ROLE_LABEL}={role}" if role else ROLE_LABEL, f"{HOST_LABEL}={host}"]})
    except (APIError, DockerException, requests.exceptions.RequestException) as e:
        raise DockerError(f"Could not follow Docker's events: {explain(e)}") from e


# -- actor containers ---------------------------------------------------------------------------
@dataclass
class RunSpec:
    """What one execution runs."""

    image: str
    environment: dict[str, Any]
    labels: dict[str, str]
    mounts: list[dict] = field(default_factory=list)
    user: str | None = None
    mem_limit: str | None = None
    max_cpus: int | None = None
    privileged: bool = False
    network: str = ""
    max_run_time: int = -1
    leave_container: bool = False
    cgroup_parent: str | None = None


@dataclass
class RunResult:
    exit_code: Any
    final_state: dict
    start_time: float
    finish_time: float
    runtime: int
    logs: str
    killed_reason: str | None = None  # "force_quit" or "max_run_time" when the worker stopped it
    usage: Usage | None = None  # from the stats API (only when asked: the cgroup counters are better)
    container_id: str | None = None  # removed by the caller once the outcome is recorded


def env_list(environment: dict[str, Any]) -> list[str]:
    """Docker env entries rendered with Python ``str()``; a None value gives the bare name."""
    return [k if v is None else f"{k}={v}" for k, v in environment.items()]


def host_config_kwargs(spec: RunSpec) -> dict:
    volumes = {}
    if spec.privileged:
        volumes[socket_path()] = {"bind": "/var/run/docker.sock", "mode": "rw"}
    for m in spec.mounts:
        volumes[m["host_path"]] = {"bind": m["container_path"], "mode": m.get("mode", "ro")}
    kwargs: dict[str, Any] = {"volumes": volumes, "privileged": spec.privileged}
    if spec.mem_limit and str(spec.mem_limit) != "-1":
        kwargs["mem_limit"] = spec.mem_limit
    if spec.max_cpus and int(spec.max_cpus) > 0:
        kwargs["nano_cpus"] = int(spec.max_cpus)
    if spec.user:
        kwargs["user"] = spec.user
    if spec.cgroup_parent:
        kwargs["cgroup_parent"] = spec.cgroup_parent
    kwargs.update(network_kwargs(spec.network))
    return kwargs


def create_actor_container(spec: RunSpec):
    """Create (not start) the actor container with the SDK's low-level API: the high-level
    ``containers.create`` inspects the new container once more, a call per execution that the
    worker does not need (it inspects once, after the run)."""
    api = client().api
    kwargs = host_config_kwargs(spec)
    user = kwargs.pop("user", None)
    binds = kwargs.pop("volumes", {})
    network = kwargs.pop("network", None)
    networking_config = None
    if network:  # a named network: joined at creation, as containers.create does
        kwargs["network_mode"] = network
        networking_config = api.create_networking_config({network: api.create_endpoint_config()})
    created = api.create_container(
        spec.image,
        environment=env_list(spec.environment),
        labels={ROLE_LABEL: "actor", HOST_LABEL: host_id(), **spec.labels},
        user=user,
        detach=True,
        host_config=api.create_host_config(binds=binds, **kwargs),
        networking_config=networking_config,
    )
    return client().containers.prepare_model({"Id": created["Id"]})


def run_actor_container(
    spec: RunSpec,
    on_start: Callable[[float], None],
    quit_event: threading.Event,
    on_logs: Callable[[str], None] | None = None,
    log_interval: float = 2.0,
    sample_stats: bool = False,
) -> RunResult:
    """Create, start and supervise one actor container until it exits, is force-quit through
    ``quit_event`` or passes ``max_run_time``; returns its exit code, state and logs. The container
    is removed afterwards unless ``leave_container``. With ``sample_stats`` the stats API is read
    while it runs (the fallback where the worker cannot read cgroup counters, see
    :class:`StatsSampler`)."""
    try:
        container = create_actor_container(spec)
    except (APIError, DockerException, requests.exceptions.RequestException) as e:
        raise start_error("Could not create the actor container", e) from e
    try:
        try:
            container.start()
        except (APIError, DockerException, requests.exceptions.RequestException) as e:
            raise start_error("Could not start the actor container", e) from e
        start = time.time()
        sampler = StatsSampler(container.id) if sample_stats else None
        on_start(start)
        killed = supervise(container, start, spec.max_run_time, quit_event, on_logs, log_interval)
        finish = time.time()
        try:
            container.reload()
            state = container.attrs.get("State") or {"unavailable": True}
        except NotFound as e:  # removed behind our back: its state went with it (upstream crashed here)
            state = {"unavailable": True, "Error": explain(e)}
        except (APIError, DockerException, requests.exceptions.RequestException) as e:
            raise DockerOutcomeUnknown(f"Could not read how container {container.id[:12]} ended: {explain(e)}") from e
        logs = container_logs(container.id)
        started, finished = run_times(state, start, finish)
        return RunResult(
            exit_code=state.get("ExitCode", "undetermined"),
            final_state=state,
            start_time=started,
            finish_time=finished,
            runtime=int(finished - started),
            logs=logs,
            killed_reason=killed,
            usage=sampler.finish() if sampler else None,
            container_id=container.id,
        )
    except DockerOutcomeUnknown:
        raise  # the container holds the outcome: left for a later attempt to adopt
    except BaseException:
        # on success the caller removes the container once the execution is recorded COMPLETE, so a
        # worker dying in between leaves it for the next attempt to adopt instead of re-running it
        if not spec.leave_container:
            try:
                remove_container(container.id)
            except Exception as e:  # noqa: BLE001 - the daemon may be gone: the first error is the one to tell
                log.warning("could not remove actor container %s: %s", container.id[:12], e)
        raise


def start_error(what: str, e: Exception) -> DockerStartContainerError:
    """Docker refusing the container's environment (a bad variable name or value: 400 on create, a
    runtime error naming the environment on start) is the message's doing, not the host's."""
    text = explain(e)
    by_message = isinstance(e, APIError) and (e.status_code == 400 or "environment variable" in text.lower())
    return DockerStartContainerError(f"{what}: {text}", caused_by_message=by_message)


def adopt_actor_container(execution_id: str, quit_event: threading.Event, max_run_time: int) -> RunResult | None:
    """The container an earlier attempt of this execution started, if there is one: a worker that
    died mid-execution leaves its actor container behind. Running or exited, it is waited for and
    its outcome returned, so the execution is not run a second time; one that never started is
    removed (None: run it afresh). A daemon that cannot be asked raises DockerOutcomeUnknown: whether
    a container holds the outcome is not known, so the execution must not be run afresh here."""
    try:
        return _adopt(execution_id, quit_event, max_run_time)
    except DockerOutcomeUnknown:
        raise
    except (DockerError, APIError, DockerException, requests.exceptions.RequestException) as e:
        raise DockerOutcomeUnknown(f"Could not look for the container of an earlier attempt of execution "
                                   f"{execution_id}: {explain(e)}") from e


def _adopt(execution_id: str, quit_event: threading.Event, max_run_time: int) -> RunResult | None:
    for found in list_containers(**{EXECUTION_LABEL: execution_id, ROLE_LABEL: "actor"}):
        try:
            container = client().containers.get(found["Id"])
        except NotFound:  # removed since it was listed
            continue
        state = container.attrs.get("State") or {}
        if state.get("Status") == "created":
            remove_container(container.id)
            continue
        started = parse_docker_time(state.get("StartedAt")) or time.time()
        killed = None
        if state.get("Running"):
            killed = supervise(container, started, max_run_time, quit_event, None, 2.0)
            container.reload()
            state = container.attrs.get("State") or {"unavailable": True}
        started, finished = run_times(state, started, time.time())
        return RunResult(
            exit_code=state.get("ExitCode", "undetermined"), final_state=state, start_time=started,
            finish_time=finished, runtime=int(max(0.0, finished - started)), logs=container_logs(container.id),
            killed_reason=killed, container_id=container.id,
        )
    return None


def still_waiting(e: requests.exceptions.RequestException) -> bool:
    """A wait that ended by its own timeout (the SDK reports it as a ConnectionError around urllib3's
    timeout), not by a daemon that cannot be reached."""
    return isinstance(e, requests.exceptions.ReadTimeout) or (
        bool(e.args) and isinstance(e.args[0], urllib3.exceptions.TimeoutError))


def run_times(state: dict, start: float, finish: float) -> tuple[float, float]:
    """When the container started and finished, by Docker's own clock where its state has the times
    (a short container can exit before the start call returns to us), ``start`` and ``finish`` where
    not. A container that exits at once can show a FinishedAt (containerd's exit time) a fraction
    of a millisecond before its StartedAt (set by dockerd once the start returned): the start is
    then taken to be the finish, so start_time never follows final_state.FinishedAt."""
    started = parse_docker_time(state.get("StartedAt")) or start
    finished = parse_docker_time(state.get("FinishedAt")) or max(finish, started)
    return min(started, finished), finished


def parse_docker_time(text: str | None) -> float | None:
    """Docker's RFC3339Nano UTC time as epoch seconds (None for Docker's zero time)."""
    if not text or text.startswith("0001-01-01"):
        return None
    main, _, rest = text.rstrip("Z").partition(".")
    fraction = float("0." + rest[:9]) if rest else 0.0
    moment = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp() + fraction


def supervise(container, start: float, max_run_time: int, quit_event: threading.Event,
              on_logs: Callable[[str], None] | None, log_interval: float,
              daemon_lost_after: float = DAEMON_LOST_AFTER) -> str | None:
    """Wait for the container to exit; stop it on force-quit or when it runs too long. A daemon that
    does not answer for ``daemon_lost_after`` seconds is taken for gone (DockerOutcomeUnknown)."""
    killed = None
    last_logs = time.monotonic()
    answered = time.monotonic()
    while True:
        try:
            container.wait(timeout=0.5)
            return killed
        except requests.exceptions.RequestException as e:
            if still_waiting(e):
                answered = time.monotonic()
            elif time.monotonic() - answered > daemon_lost_after:
                raise DockerOutcomeUnknown(f"The Docker daemon has not answered for {daemon_lost_after:g}s while "
                                           f"container {container.id[:12]} ran: {explain(e)}") from e
            else:
                time.sleep(0.5)
        except NotFound:  # removed behind our back: nothing left to supervise
            return killed
        except (APIError, DockerException) as e:
            raise DockerOutcomeUnknown(f"Could not supervise container {container.id[:12]}: {explain(e)}") from e
        if killed is None:
            if quit_event.is_set():
                killed = "force_quit"
            elif max_run_time > 0 and time.time() - start > max_run_time:
                killed = "max_run_time"
            if killed is not None:
                log.info("stopping container %s (%s)", container.id[:12], killed)
                try:
                    container.stop(timeout=conf().get_int("workers", "stop_grace_seconds", 10))
                except NotFound:
                    return killed
                except (APIError, DockerException, requests.exceptions.RequestException) as e:
                    log.warning("stop of %s failed (%s); killing it", container.id[:12], e)
                    try:
                        container.kill()
                    except NotFound:
                        return killed
                    except (APIError, DockerException) as e2:
                        raise DockerStopContainerError(f"Could not stop container {container.id[:12]}: {e2}") from e2
        if on_logs and time.monotonic() - last_logs > log_interval:
            last_logs = time.monotonic()
            try:  # live logs are a convenience: a hiccup must not end the supervision
                on_logs(container_logs(container.id))
            except Exception as e:
                log.warning("could not store the live logs of %s: %s", container.id[:12], e)


# -- resource use from the stats API (the fallback of actors/accounting.py) ---------------------------
def usage_from_stats(sample: dict) -> Usage:
    """cpu (ns), block io (bytes) and peak memory of one stats API sample; all three are cumulative
    over the container's life (upstream summed them over samples, so its totals grew quadratically
    with the run time)."""
    cpu = ((sample.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0
    io = 0
    for entry in (sample.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        if str(entry.get("op", "")).lower() == "total":
            io += int(entry.get("value") or 0)
    memory = (sample.get("memory_stats") or {}).get("max_usage") or 0
    return Usage(cpu=int(cpu), io=io, memory=int(memory))


class StatsSampler:
    """The fallback where cgroup counters are out of reach: follow the Docker stats stream of a
    running container and keep the last (largest) cumulative values. The stream gives a sample
    about once a second and ends when the container exits, so what ran in the last second, or all
    of a run shorter than the first sample, is missed; this is why cgroup accounting comes first
    (docs/architecture.md, "Accounting"; bench/stats_cost.py measures both)."""

    def __init__(self, cid: str):
        self.cid = cid
        self.usage = Usage()
        self.samples = 0
        self._stream = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stats", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._stream = client().api.stats(self.cid, decode=True, stream=True)
            for sample in self._stream:
                if self._done.is_set():
                    break
                if not sample.get("read", "").startswith("0001-"):  # the zero sample after exit
                    u = usage_from_stats(sample)
                    self.usage = Usage(cpu=max(self.usage.cpu, u.cpu), io=max(self.usage.io, u.io),
                                       memory=max(self.usage.memory, u.memory))
                    self.samples += 1
        except (APIError, DockerException, requests.exceptions.RequestException, ValueError) as e:
            if not self._done.is_set():
                log.info("stats of container %s: %s", self.cid[:12], e)

    def finish(self, timeout: float = 3.0) -> Usage:
        """After the container exited: the stream ends by itself; don't wait long for it."""
        self._done.set()
        self._thread.join(timeout)
        return self.usage
