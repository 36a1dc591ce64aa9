"""actors.ipc: the results socket and the binary FIFO, with real sockets, FIFOs and reader processes."""
from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import threading
import time

import pytest

from actors import ipc

pytestmark = pytest.mark.unit


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_nonblocking_until_eof(path: str, timeout: float = 10) -> bytes:
    """How the SDK reads (images/sdk/abaco_sdk.py): non-blocking open, poll, read to end-of-file."""
    import select

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks = []
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            poller.poll(100)
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
        raise AssertionError("no end-of-file")
    finally:
        os.close(fd)


# -- binary FIFO --------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 10, 70_000, 3 * 1024 * 1024])
def test_fifo_delivers_everything_then_eof_to_cat(tmp_path, size):
    data = os.urandom(size)
    fifo = ipc.BinaryFifo(str(tmp_path), "w1", "e1", data)
    assert stat.S_ISFIFO(os.stat(fifo.path).st_mode)
    assert fifo.mount() == {"host_path": fifo.path, "container_path": "/_abaco_binary_data", "mode": "ro"}
    fifo.open()  # before the "container" starts: never blocks
    reader = subprocess.Popen(["sh", "-c", f"cat {fifo.path} | sha256sum"], stdout=subprocess.PIPE)
    fifo.start_writer()
    out = reader.communicate(timeout=30)[0].decode().split()[0]
    fifo.finish()
    assert out == sha(data)
    assert not os.path.exists(fifo.path)


@pytest.mark.parametrize("size", [0, 1000, 2 * 1024 * 1024])
def test_fifo_works_for_non_blocking_readers(tmp_path, size):
    data = os.urandom(size)
    fifo = ipc.BinaryFifo(str(tmp_path), "w1", "e2", data)
    fifo.open()
    fifo.start_writer()
    assert sha(read_nonblocking_until_eof(fifo.path)) == sha(data)
    fifo.finish()


def test_small_payload_is_in_the_pipe_before_the_container_starts(tmp_path):
    """Upstream's helpers read at once without waiting: the data must already be there."""
    data = os.urandom(200_000)  # more than the default 64 KiB pipe buffer
    fifo = ipc.BinaryFifo(str(tmp_path), "w1", "e3", data)
    fifo.open()
    assert fifo.written == len(data)
    fd = os.open(fifo.path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        got = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            got += chunk
    finally:
        os.close(fd)
    fifo.finish()
    assert got == data


def test_fifo_writer_gives_up_when_nobody_reads(tmp_path):
    fifo = ipc.BinaryFifo(str(tmp_path), "w1", "e4", os.urandom(8 * 1024 * 1024))
    fifo.open()
    fifo.start_writer()
    time.sleep(0.3)
    started = time.monotonic()
    fifo.finish()  # the container "exited" without reading
    assert time.monotonic() - started < 2
    assert fifo.written < 8 * 1024 * 1024
    assert not os.path.exists(fifo.path)


# -- results socket -----------------------------------------------------------------------------
def test_results_are_forwarded_in_order_and_drained(tmp_path):
    got: list[bytes] = []
    exited = threading.Event()
    results = ipc.ResultsSocket(str(tmp_path), "w1", "e5")
    assert results.path == str(tmp_path / "w1" / "e5.sock")
    assert stat.S_IMODE(os.stat(results.path).st_mode) == 0o777
    assert results.mount()["container_path"] == "/_abaco_results.sock"
    results.start(got.append, on_exit=exited.set)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"\x00" * ipc.MAX_RESULT_BYTES, results.path)
        for i in range(30):  # more than the kernel's datagram queue: the sender waits for the reader
            sender.sendto(str(i).encode(), results.path)
    results.finish()
    assert exited.is_set()
    assert len(got) == 31 and len(got[0]) == ipc.MAX_RESULT_BYTES
    assert got[1:] == [str(i).encode() for i in range(30)]
    assert not os.path.exists(results.path)


def test_a_stale_socket_file_is_replaced(tmp_path):
    first = ipc.ResultsSocket(str(tmp_path), "w1", "e6")
    first.sock.close()  # a crashed worker left the file behind
    second = ipc.ResultsSocket(str(tmp_path), "w1", "e6")
    second.close()
    assert not os.path.exists(second.path)


def test_worker_dirs(tmp_path):
    roots = [str(tmp_path / "sockets"), "", str(tmp_path / "fifos")]
    ipc.make_worker_dirs(roots, "w9")
    assert (tmp_path / "sockets" / "w9").is_dir() and (tmp_path / "fifos" / "w9").is_dir()
    ipc.remove_worker_dirs(roots, "w9")
    assert not (tmp_path / "sockets" / "w9").exists()
