"""The cost scenario's floor: the least CPU a process on this machine spends per GiB on what the edge must do with
every byte, before any Python of its own runs (issue 23: "where a goal is not reached, the measured floor").

One process (this module, ``python -m load.floor DIR BYTES``, printing JSON) moves the bytes the cheapest way the
kernel offers and counts its own thread's CPU (`time.thread_time`, user + system) around each step, three times
over (each step's median is reported: one pass on this noisy VM can be off by half):

- ``recv``: receive them from a loopback TCP peer (a child process sends them, as the bucket or a pushing client
  would) into one reused 1 MiB buffer (`recv_into`: nothing allocated per read);
- ``sha256``: hash them (hashlib's OpenSSL sha256, the digest every blob is checked against);
- ``write``: write them into a new file (fresh page-cache pages, as a fill's partial file and a push's spool are);
- ``sendfile``: send the file to a loopback TCP reader (a child that drops the bytes), 32 MiB per call, as the
  edge serves a blob (and as a zero-copy upload to the bucket would);
- ``tls_send``: send the file over TLS to a loopback reader, as parts go to an HTTPS bucket (Storj's gateway):
  1 MiB `pread`, encrypted into memory (`ssl.SSLObject`, as asyncio's TLS transport does) and sent in one
  `sendall`, not a `send` per 16 KiB record as a blocking TLS socket does (0.1-0.2 CPU-s/GiB more here). The
  reader is TLS's server end and picks AES-128-GCM, what a Go server picks for this client (SeaweedFS's HTTPS
  port answers it with TLS_AES_128_GCM_SHA256; Storj's gateway is Go too).

The children's CPU is theirs, not counted: the cost scenario counts the bucket and the reader apart too. Floors:
cold fill-and-serve = recv + sha256 + write + sendfile; warm serve = sendfile; a push over plain HTTP with signed
parts = recv + 2 × sha256 (the digest check, then the payload hash the signature carries) + write + sendfile;
a push to an HTTPS bucket (parts ``UNSIGNED-PAYLOAD``) = recv + sha256 + write + tls_send.
Reading the file back to hash it, the HTTP framing and the event loop are what the edge adds above the floor.

Last, ``stack`` (`load.floorstack`): the same bytes as a chunked request body through the edge's own HTTP server
(hypercorn, h11, starlette) to an app that drops them, as a push's body comes in; the kernel's receive included.
A push can spend no less than ``push_stack`` = ``push_signed`` - ``recv`` + ``stack``: the signed push's floor
with its receive taken through the server the product stands on; to an HTTPS bucket, ``push_tls_stack`` =
``push_tls`` - ``recv`` + ``stack``.
Each round writes a new file and keeps it until the end, so its pages are new ones, as a cache's are; what the same
write costs over pages already in the page cache is reported beside (``rewrite_cpu_seconds_per_gib``): on a VM
whose balloon reports free pages to the host, a new page costs the host's fault too, charged to the writer. A push
after the first on the same edge spools its parts over cached pages (`mirror.push.spool.SpoolPool`): its floors,
``push_stack_rewrite`` and ``push_tls_stack_rewrite``, take ``rewrite`` for ``write``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import socket
import ssl
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable

from load import floorstack
from load.components import self_signed_for_loopback

CHUNK = 1024 * 1024
SEGMENT = 32 * 1024 * 1024  # the edge's zero-copy send per call (mirror/sendrange.py)
GIB = 2**30
STEPS = ("recv", "sha256", "write", "sendfile", "tls_send")


def pattern(length: int) -> bytes:
    """What the sender repeats: bytes 0..255 over and over."""
    return bytes(range(256)) * (length // 256)


def _send(port: int, size: int) -> None:
    """The peer that stands for the bucket: `size` bytes over loopback TCP."""
    view = memoryview(pattern(CHUNK))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        left = size
        while left:
            sock.sendall(view[: min(left, CHUNK)])
            left -= min(left, CHUNK)


def _drop(sock: socket.socket, size: int) -> None:
    """Read `size` bytes from `sock` into one reused buffer, keeping none of them."""
    buffer = bytearray(CHUNK)
    received = 0
    while received < size:
        count = sock.recv_into(buffer)
        if not count:
            raise RuntimeError(f"the floor's sender stopped after {received} of {size} bytes")
        received += count


def _drain(port: int, size: int) -> None:
    """The peer that stands for the client: reads `size` bytes and drops them."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        _drop(sock, size)


def _drain_tls(certificate: Path, key: Path, port: int, size: int) -> None:
    """The peer that stands for an HTTPS bucket: TLS's server end (AES-128-GCM), reads `size` bytes, drops them."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3's suites cannot be chosen from Python; 1.2's can
    context.set_ciphers("ECDHE+AESGCM+AES128")
    context.load_cert_chain(certificate, key)
    with socket.create_connection(("127.0.0.1", port)) as raw, context.wrap_socket(raw, server_side=True) as sock:
        _drop(sock, size)


def _connected(peer: Callable[[int, int], None], size: int) -> tuple[socket.socket, multiprocessing.process.BaseProcess]:
    """A loopback TCP connection to a child process running `peer`."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        child = multiprocessing.get_context("fork").Process(target=peer, args=(listener.getsockname()[1], size), daemon=True)
        child.start()
        listener.settimeout(30)
        connection, _ = listener.accept()
    connection.settimeout(None)
    return connection, child


def _receive_hash_write(path: Path, size: int, spent: dict[str, float]) -> str:
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    hasher = hashlib.sha256()
    connection, sender = _connected(_send, size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        offset = 0
        while offset < size:
            started = time.thread_time()
            count = connection.recv_into(buffer)
            received = time.thread_time()
            if not count:
                raise RuntimeError(f"the floor's sender stopped after {offset} of {size} bytes")
            hasher.update(view[:count])
            hashed = time.thread_time()
            os.pwrite(fd, view[:count], offset)
            spent["recv"] += received - started
            spent["sha256"] += hashed - received
            spent["write"] += time.thread_time() - hashed
            offset += count
    finally:
        os.close(fd)
        connection.close()
        sender.join(30)
    return hasher.hexdigest()


def _send_file(path: Path, size: int, spent: dict[str, float]) -> None:
    connection, reader = _connected(_drain, size)
    try:
        with path.open("rb") as source:
            sent = 0
            while sent < size:
                started = time.thread_time()
                sent += os.sendfile(connection.fileno(), source.fileno(), sent, min(SEGMENT, size - sent))
                spent["sendfile"] += time.thread_time() - started
    finally:
        connection.close()
        reader.join(30)
    if reader.exitcode != 0:
        raise RuntimeError(f"the floor's reader failed (exit {reader.exitcode})")


def _tls_client(connection: socket.socket, context: ssl.SSLContext) -> tuple[ssl.SSLObject, ssl.MemoryBIO]:
    """TLS's client end over `connection`, encrypting into memory: the session and the BIO its records go to."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            connection.sendall(outgoing.read())
            received = connection.recv(CHUNK)
            if not received:
                raise RuntimeError("the floor's TLS reader hung up during the handshake") from None
            incoming.write(received)
    connection.sendall(outgoing.read())
    return tls, outgoing


def _send_file_tls(path: Path, size: int, spent: dict[str, float]) -> None:
    with tempfile.TemporaryDirectory(dir=path.parent) as keys:
        certificate, key = self_signed_for_loopback(Path(keys))
        connection, reader = _connected(partial(_drain_tls, certificate, key), size)
        context = ssl.create_default_context(cafile=str(certificate))
    try:
        tls, outgoing = _tls_client(connection, context)  # the handshake is not counted: once per connection
        with path.open("rb") as source:
            for offset in range(0, size, CHUNK):
                started = time.thread_time()
                tls.write(os.pread(source.fileno(), min(CHUNK, size - offset), offset))
                connection.sendall(outgoing.read())
                spent["tls_send"] += time.thread_time() - started
    finally:
        connection.close()
        reader.join(30)
    if reader.exitcode != 0:
        raise RuntimeError(f"the floor's TLS reader failed (exit {reader.exitcode})")


def _overwrite(path: Path, size: int) -> float:
    """CPU seconds to write `size` bytes over a file's pages already in the page cache: the write without the
    page allocation (what a new page costs is ``write`` minus this)."""
    view = memoryview(pattern(CHUNK))
    fd = os.open(path, os.O_WRONLY)
    try:
        started = time.thread_time()
        for offset in range(0, size, CHUNK):
            os.pwrite(fd, view[: min(CHUNK, size - offset)], offset)
        return time.thread_time() - started
    finally:
        os.close(fd)


def measure(directory: Path, size: int, rounds: int = 3) -> dict[str, object]:
    """CPU seconds per GiB of each step (the median of `rounds`) and of each floor, for `size` bytes moved through a
    new file in `directory` each round (on the filesystem whose page cache is being measured; removed after)."""
    samples: dict[str, list[float]] = {step: [] for step in STEPS}
    paths = [directory / f"floor-{os.getpid()}-{round}.blob" for round in range(rounds)]
    try:
        for path in paths:  # each round a new file, kept: its pages are new ones, as a cache's are
            spent = dict.fromkeys(STEPS, 0.0)
            digest = _receive_hash_write(path, size, spent)
            _send_file(path, size, spent)
            _send_file_tls(path, size, spent)
            for step, seconds in spent.items():
                samples[step].append(seconds / size * GIB)
        rewrite = _overwrite(paths[-1], size) / size * GIB
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
    stack_samples = floorstack.measure(pattern(CHUNK), size, rounds)  # docker streams a PATCH in pieces about this size
    per_gib = {step: statistics.median(values) for step, values in samples.items()}
    stack = statistics.median(stack_samples)
    cold = per_gib["recv"] + per_gib["sha256"] + per_gib["write"] + per_gib["sendfile"]
    push_signed = cold + per_gib["sha256"]
    push_tls = per_gib["recv"] + per_gib["sha256"] + per_gib["write"] + per_gib["tls_send"]
    push_stack, push_tls_stack = push_signed - per_gib["recv"] + stack, push_tls - per_gib["recv"] + stack
    return {"bytes": size, "sha256": digest, "rounds": rounds, "steps_cpu_seconds_per_gib": per_gib, "samples": samples,
            "rewrite_cpu_seconds_per_gib": rewrite, "stack_cpu_seconds_per_gib": stack, "stack_samples": stack_samples,
            "cold": cold, "warm": per_gib["sendfile"], "push_signed": push_signed, "push_tls": push_tls,
            "push_stack": push_stack, "push_tls_stack": push_tls_stack,
            "push_stack_rewrite": push_stack - per_gib["write"] + rewrite,
            "push_tls_stack_rewrite": push_tls_stack - per_gib["write"] + rewrite}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m load.floor DIR BYTES", file=sys.stderr)
        return 2
    print(json.dumps(measure(Path(argv[0]), int(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
