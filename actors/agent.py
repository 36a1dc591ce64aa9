"""What the spawner and the events agent share: consume one queue on a Consumer thread, process
each delivery on a thread pool, acknowledge it once processed (also when processing failed), and on
SIGTERM take nothing new and finish the deliveries in flight before exiting.

An agent that cannot take work for a while (a spawner whose host is full) raises :class:`Requeue`
from ``process``: the delivery goes back to the queue for another consumer, and the agent stops
consuming until ``accepting()`` says it can again (checked twice a second)."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from actors import channels

log = logging.getLogger(__name__)


class Requeue(Exception):
    """Put the delivery back on its queue (for another consumer) instead of acknowledging it."""


class PooledAgent:
    """Subclasses set ``name`` and ``log`` (their own logger, so per-module log levels keep
    applying) and implement :meth:`channel` and :meth:`process`."""

    name = "agent"
    log = log

    def __init__(self, concurrency: int, thread_name_prefix: str):
        self.concurrency = max(1, concurrency)
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=thread_name_prefix)
        self.stopping = threading.Event()
        self.cancelled = False
        self.inflight = 0
        self.lock = threading.Lock()
        self.consumer: channels.Consumer | None = None
        self.paused = False

    def channel(self) -> channels.Channel:
        raise NotImplementedError

    def accepting(self) -> bool:
        """Whether the agent can take new deliveries now (an agent that may be full overrides it)."""
        return True

    def process(self, value: Any, delivery) -> None:
        raise NotImplementedError

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        self.consumer = channels.Consumer()
        channel = self.channel()
        self.consumer.subscribe(channel, self.on_delivery, prefetch=self.concurrency)
        self.log.info("%s consuming %s", self.name, channel.name)
        self.consumer.run(until=self.finished)
        self.consumer.close()
        self.pool.shutdown(wait=True)
        self.log.info("%s stopped", self.name)

    def stop(self, *_args) -> None:
        """Signal handler: only flags the stop; the consumer thread acts on it in finished()."""
        self.stopping.set()

    def finished(self) -> bool:
        """Checked by the consumer loop on its own thread: once stopping, take nothing new and
        finish when the deliveries in flight are done (their acks are sent before the loop ends).
        Meanwhile it pauses and resumes consuming as ``accepting()`` says."""
        if not self.stopping.is_set():
            self.pause_or_resume()
            return False
        if not self.cancelled:
            self.cancelled = True
            self.log.info("%s stopping: finishing %d delivery(ies) in flight", self.name, self.inflight)
            self.consumer.cancel(self.channel().name)
        return self.inflight == 0

    def pause_or_resume(self) -> None:
        accepting = self.accepting()
        if accepting and self.paused:
            self.paused = False
            self.log.info("%s has room again: consuming %s", self.name, self.channel().name)
            self.consumer.subscribe(self.channel(), self.on_delivery, prefetch=self.concurrency)
        elif not accepting and not self.paused:
            self.paused = True
            self.log.info("%s is full: not consuming %s until it has room", self.name, self.channel().name)
            self.consumer.cancel(self.channel().name)

    def on_delivery(self, value: Any, delivery) -> None:
        with self.lock:
            self.inflight += 1
        self.pool.submit(self.handle, value, delivery)

    def handle(self, value: Any, delivery) -> None:
        requeue = False
        try:
            self.process(value, delivery)
        except Requeue as e:
            requeue = True
            self.log.info("%s: %s; %r goes back to the queue", self.name, e, value)
        except Exception:
            self.log.exception("%s: %r failed", self.name, value)
        finally:
            if requeue:
                delivery.nack(requeue=True)
            else:
                delivery.ack()
            with self.lock:
                self.inflight -= 1
