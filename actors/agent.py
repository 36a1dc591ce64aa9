"""What the spawner and the events agent share: consume one queue on a Consumer thread, process
each delivery on a thread pool, acknowledge it once processed (also when processing failed), and on
SIGTERM take nothing new and finish the deliveries in flight before exiting."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from actors import channels

log = logging.getLogger(__name__)


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

    def channel(self) -> channels.Channel:
        raise NotImplementedError

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
        finish when the deliveries in flight are done (their acks are sent before the loop ends)."""
        if not self.stopping.is_set():
            return False
        if not self.cancelled:
            self.cancelled = True
            self.log.info("%s stopping: finishing %d delivery(ies) in flight", self.name, self.inflight)
            self.consumer.cancel(self.channel().name)
        return self.inflight == 0

    def on_delivery(self, value: Any, delivery) -> None:
        with self.lock:
            self.inflight += 1
        self.pool.submit(self.handle, value, delivery)

    def handle(self, value: Any, delivery) -> None:
        try:
            self.process(value, delivery)
        except Exception:
            self.log.exception("%s: %r failed", self.name, value)
        finally:
            delivery.ack()
            with self.lock:
                self.inflight -= 1
