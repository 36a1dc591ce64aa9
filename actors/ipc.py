"""The two host-side channels between a worker and the actor container it runs: the results socket
and the binary-message FIFO (images/README.md tells what the container sees). No Docker here: the worker mounts
the paths these objects create.

* :class:`ResultsSocket` binds a Unix datagram socket at
  ``<socket_host_path_dir>/<worker_id>/<execution_id>.sock`` (mode 0777, so an actor running under
  any uid can send), mounted at ``/_abaco_results.sock``. A reader thread hands every datagram (at
  most 131072 bytes) to a callback while the container runs, and after :meth:`ResultsSocket.finish`
  (the container has exited) forwards what is still queued; then the socket is closed and unlinked.

* :class:`BinaryFifo` makes a FIFO at ``<fifo_host_path_dir>/<worker_id>/<execution_id>``, mounted
  read-only at ``/_abaco_binary_data``. Upstream wrote the whole payload before the container
  existed, so a payload larger than the pipe buffer (64 KiB) blocked the worker for ever
 . Here:

  1. :meth:`BinaryFifo.open` (before the container starts) opens the FIFO read-write and
     non-blocking, enlarges the pipe buffer up to ``/proc/sys/fs/pipe-max-size`` (1 MiB) and fills it
     with what fits without blocking. A reader that reads at once without waiting, as upstream's
     helpers did, finds the data there; this never blocks.
  2. :meth:`BinaryFifo.start_writer` (after the container started) writes the rest from a thread as
     the actor reads, then waits until the actor has read everything and closes the FIFO, so the
     reader sees end-of-file (``cat``, ``wc -c``, ``sha256sum`` and the SDK read to EOF).
  3. :meth:`BinaryFifo.finish` (after the container exited) stops the writer: an actor that never
     reads does not hold the worker; the FIFO is closed and unlinked.
"""
from __future__ import annotations

import array
import errno
import fcntl
import logging
import os
import select
import shutil
import socket
import termios
import threading
from typing import Callable

log = logging.getLogger(__name__)

RESULTS_CONTAINER_PATH = "/_abaco_results.sock"
BINARY_CONTAINER_PATH = "/_abaco_binary_data"
MAX_RESULT_BYTES = 131072  # one datagram (upstream's limit)
DEFAULT_PIPE_SIZE = 65536
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def worker_dir(root: str, worker_id: str) -> str:
    """``<root>/<worker_id>``: one folder per worker (the health agent removes those of gone workers)."""
    return os.path.join(root, worker_id)


def make_worker_dirs(roots: list[str], worker_id: str) -> None:
    for root in roots:
        if root:
            os.makedirs(worker_dir(root, worker_id), exist_ok=True)


def remove_worker_dirs(roots: list[str], worker_id: str) -> None:
    for root in roots:
        if root:
            shutil.rmtree(worker_dir(root, worker_id), ignore_errors=True)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("could not remove %s: %s", path, e)


# -- results ------------------------------------------------------------------------------------
class ResultsSocket:
    """One execution's results socket and the thread that forwards its datagrams.

    A datagram is in the socket's queue once the actor's ``send`` returned, so when the container
    has exited everything it sent is already there: :meth:`finish` wakes the reader, which takes
    what is queued without waiting and ends (upstream waited for a 0.1 s receive timeout, which
    added that much to every execution)."""

    def __init__(self, root: str, worker_id: str, execution_id: str):
        folder = worker_dir(root, worker_id)
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, f"{execution_id}.sock")
        self.count = 0
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        _unlink(self.path)  # a stale file of a redelivered message
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.bind(self.path)
            os.chmod(self.path, 0o777)
            self.sock.setblocking(False)
        except OSError:
            self.close()
            raise

    def mount(self) -> dict:
        """Read-only is enough: sending to a socket needs no write access to the file system."""
        return {"host_path": self.path, "container_path": RESULTS_CONTAINER_PATH, "mode": "ro"}

    def start(self, on_result: Callable[[bytes], None], on_exit: Callable[[], None] | None = None) -> None:
        """Forward every datagram to ``on_result`` from a thread; ``on_exit`` runs on that thread
        when it ends (the worker closes the thread's broker connection there)."""
        self._thread = threading.Thread(target=self._read, args=(on_result, on_exit), name="results", daemon=True)
        self._thread.start()

    def _read(self, on_result: Callable[[bytes], None], on_exit: Callable[[], None] | None) -> None:
        try:
            poller = select.poll()
            poller.register(self.sock.fileno(), select.POLLIN)
            poller.register(self._wake_r, select.POLLIN)
            stopping = False
            while True:
                ready = {fd for fd, _ in poller.poll()}
                stopping = stopping or self._wake_r in ready
                while self._forward_one(on_result):  # everything queued now
                    pass
                if stopping:
                    return
        except OSError as e:
            log.error("results socket %s: %s", self.path, e)
        finally:
            if on_exit is not None:
                try:
                    on_exit()
                except Exception:
                    log.exception("results thread clean-up failed")

    def _forward_one(self, on_result: Callable[[bytes], None]) -> bool:
        try:
            data, _, flags, _ = self.sock.recvmsg(MAX_RESULT_BYTES)
        except BlockingIOError:
            return False
        if flags & socket.MSG_TRUNC:
            log.warning("a result on %s was longer than %d bytes and was cut", self.path, MAX_RESULT_BYTES)
        self.count += 1
        try:
            on_result(data)
        except Exception:
            log.exception("could not store a result of %s", self.path)
        return True

    def finish(self, timeout: float = 60.0) -> None:
        """After the container exited: let the thread forward what is queued, then close and unlink
        the socket. The results are all forwarded when this returns (unless ``timeout`` passed)."""
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("results of %s still being forwarded after %g s; closing the socket", self.path, timeout)
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            _unlink(self.path)
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass


# -- binary messages ----------------------------------------------------------------------------
def pipe_max_size() -> int:
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return DEFAULT_PIPE_SIZE


def _pending_bytes(fd: int) -> int:
    """Bytes in the pipe not yet read (FIONREAD)."""
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    return buf[0]


class BinaryFifo:
    """One execution's binary message, delivered through a FIFO (see the module doc)."""

    CHUNK = 1 << 20
    POLL_MS = 100

    def __init__(self, root: str, worker_id: str, execution_id: str, payload: bytes):
        folder = worker_dir(root, worker_id)
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, execution_id)
        self.payload = memoryview(payload)
        self.written = 0
        self.fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        _unlink(self.path)
        os.mkfifo(self.path, 0o644)
        os.chmod(self.path, 0o644)  # whatever the umask: readable by the actor's uid

    def mount(self) -> dict:
        return {"host_path": self.path, "container_path": BINARY_CONTAINER_PATH, "mode": "ro"}

    def open(self) -> None:
        """Open read-write (never blocks, with or without a reader) and pre-fill the pipe."""
        if not self.payload:
            return  # nothing to pre-fill; the writer only has to give the reader its end-of-file
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        if len(self.payload) > DEFAULT_PIPE_SIZE:
            try:
                fcntl.fcntl(self.fd, F_SETPIPE_SZ, min(pipe_max_size(), len(self.payload)))
            except OSError as e:  # e.g. the user's pipe quota is spent: the writer still copes
                log.info("could not enlarge the pipe of %s: %s", self.path, e)
        self._write_available()

    def _write_available(self) -> bool:
        """Write what fits now; True when everything is written."""
        while self.written < len(self.payload):
            try:
                n = os.write(self.fd, self.payload[self.written:self.written + self.CHUNK])
            except BlockingIOError:
                return False
            self.written += n
        return True

    def start_writer(self) -> None:
        self._thread = threading.Thread(target=self._write, name="binary", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        try:
            if self.fd is None:
                self._signal_empty()
                return
            poller = select.poll()
            poller.register(self.fd, select.POLLOUT)
            while not self._stop.is_set() and not self._write_available():
                poller.poll(self.POLL_MS)
            # everything is in the pipe: once the actor has read it all, close our end so that its
            # read returns end-of-file (closing earlier would throw away what it has not read yet)
            delay = 0.001
            while not self._stop.is_set() and _pending_bytes(self.fd) > 0:
                self._stop.wait(delay)
                delay = min(delay * 2, 0.02)
        except OSError as e:
            log.error("writing the binary message to %s failed after %d bytes: %s", self.path, self.written, e)
        finally:
            self._close_fd()

    def _signal_empty(self) -> None:
        """An empty message: open (and close) a write end as soon as a reader is there, which is
        what a reader waiting in a blocking open, or in poll(), needs to see end-of-file."""
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                self._stop.wait(0.01)
                continue
            os.close(fd)
            return

    def _close_fd(self) -> None:
        with self._lock:
            if self.fd is not None:
                try:
                    os.close(self.fd)
                except OSError:
                    pass
                self.fd = None

    def finish(self, timeout: float = 5.0) -> None:
        """After the container exited (or could not start): stop writing, close and unlink."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.written < len(self.payload):
            log.info("binary message %s: %d of %d bytes were written before the container exited",
                     self.path, self.written, len(self.payload))
        self._close_fd()
        _unlink(self.path)

