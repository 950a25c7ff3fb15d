"""Request-level fuzzer: hostile requests against a live edge, counting answers and watching its memory.

    python -m load.fuzz --requests 100000 --seconds 900            # starts its own edge (filesystem backend)
    python -m load.fuzz --url http://127.0.0.1:5000 --pid 1234      # an edge already running (pid: for RSS)

Every request is drawn from templates of the registry API with mutated parts: repository names, tags, digests,
Range and Accept headers, query strings, invented methods, upload sessions (chunks with true, false and absurd
Content-Range), manifest bodies with broken descriptors, long and percent-encoded paths. It stops after
`--requests` requests or `--seconds` seconds, whichever comes first, prints one JSON summary line (counts by
status class, the first 5xx seen, RSS at start / peak / end) and exits 1 if any answer was a 5xx or the peak
RSS went over `--rss-limit-mib`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from load.procs import Process, free_port, install_teardown, rss_bytes

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REPOSITORY = "fuzz/app"
JUNK = "abcXYZ019._-~:+=@!$&'()*,;%/\\\"<>^`{|} \t\u00e9\u2603\x00\x7f"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Fuzzer:
    def __init__(self, base: str, seed: int) -> None:
        self.base = base.rstrip("/")
        self.random = random.Random(seed)
        self.layer = self.random.randbytes(300_000)
        self.config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        self.counts: Counter[str] = Counter()
        self.first_5xx: list[str] = []
        self.sessions: list[str] = []

    # -- values -------------------------------------------------------------------------------------------

    def junk(self, longest: int = 40) -> str:
        return "".join(self.random.choice(JUNK) for _ in range(self.random.randint(1, longest)))

    def header_junk(self, longest: int = 40) -> str:
        """Junk a client library will still send as a header value (visible ASCII and Latin-1, no NUL/CR/LF)."""
        return "".join(c for c in self.junk(longest) if " " <= c <= "\u00ff" and c != "\x7f") or "x"

    def name(self) -> str:
        return self.random.choice([
            REPOSITORY, "fuzz/other", "library/alpine", "a" * self.random.randint(200, 300), "UPPER/case", "a//b",
            "../../etc", "a/./b", "-lead", "trail-", "x" + "/y" * self.random.randint(1, 80), self.junk(),
        ])

    def digest(self) -> str:
        return self.random.choice([
            _digest(self.layer), _digest(self.config), _digest(self.random.randbytes(8)), "sha256:" + "0" * 64,
            "sha256:" + "A" * 64, "sha512:" + "0" * 128, "md5:" + "0" * 32, "sha256:" + self.junk(70), self.junk(),
            "sha256:" + "f" * self.random.randint(0, 200),
        ])

    def reference(self) -> str:
        return self.random.choice(["v1", "latest", "." + self.junk(5), "x" * 129, self.digest(), self.junk(), "v1" * 64])

    def number(self) -> str:
        return self.random.choice([
            "", str(self.random.randint(0, 400_000)), str(self.random.randint(10**15, 10**25)),
            "9" * self.random.randint(4290, 4400), "-1", "0x10", " 5", "1e3",
        ])

    def range_header(self) -> str:
        return self.random.choice([
            f"bytes={self.number()}-{self.number()}", f"bytes=-{self.number()}", f"bytes={self.number()}-",
            "bytes=0-1,5-9", "items=0-5", self.header_junk(), "bytes=" + "1-2," * self.random.randint(1, 300),
        ])

    def accept(self) -> str:
        types = [OCI_MANIFEST, "*/*", "application/json", "application/vnd.oci.image.index.v1+json", self.header_junk(30)]
        return ", ".join(self.random.choice(types) + self.random.choice(["", ";q=0.5", ";q=" + self.header_junk(5)])
                         for _ in range(self.random.randint(0, 6)))

    def query(self) -> str:
        keys = ["n", "last", "digest", "mount", "from", "ns", self.junk(6)]
        pairs = [(self.random.choice(keys), self.random.choice([self.number(), self.junk(), self.digest(), self.name()]))
                 for _ in range(self.random.randint(0, 4))]
        return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in pairs)

    def manifest(self) -> bytes:
        def descriptor() -> Any:
            return self.random.choice([
                {"mediaType": OCI_CONFIG, "digest": _digest(self.config), "size": len(self.config)},
                {"mediaType": OCI_LAYER, "digest": _digest(self.layer), "size": len(self.layer)},
                {"mediaType": OCI_LAYER, "digest": self.digest(), "size": self.random.choice([0, -1, 10**30, "7", None])},
                {"mediaType": OCI_LAYER, "digest": self.random.choice([5, None, [], {}]), "size": 1},
                {"mediaType": self.junk(20), "digest": self.digest(), "urls": self.random.choice([["https://x"], "x", [1]])},
                self.junk(), 7, None, [],
            ])

        document: dict[str, Any] = {"schemaVersion": self.random.choice([2, 1, "2", None]),
                                    "mediaType": self.random.choice([OCI_MANIFEST, self.junk(20)]),
                                    "config": descriptor(), "layers": [descriptor() for _ in range(self.random.randint(0, 3))]}
        if self.random.random() < 0.4:
            document["subject"] = descriptor()
        text = json.dumps(document)
        if self.random.random() < 0.1:
            text = text[: self.random.randint(0, len(text))]
        return text.encode()

    # -- requests -----------------------------------------------------------------------------------------

    def request(self) -> tuple[str, str, dict[str, str], bytes]:
        """(method, raw path with query, headers, body) of one hostile request."""
        name = quote(self.name(), safe="/")
        choice = self.random.randrange(12)
        headers: dict[str, str] = {}
        body = b""
        method = self.random.choice(["GET", "HEAD"])
        if choice == 0:
            path = f"/v2/{name}/manifests/{quote(self.reference(), safe=':')}"
            headers["Accept"] = self.accept()
        elif choice == 1:
            path = f"/v2/{name}/blobs/{quote(self.digest(), safe=':')}"
            headers["Range"] = self.range_header()
        elif choice == 2:
            path = f"/v2/{REPOSITORY}/blobs/{_digest(self.random.choice([self.layer, self.config, b'']))}"
            headers["Range"] = self.range_header()
        elif choice == 3:
            path = self.random.choice(["/v2/_catalog", f"/v2/{name}/tags/list"]) + "?" + self.query()
        elif choice == 4:
            method, path = "POST", f"/v2/{name}/blobs/uploads/?{self.query()}"
            body = self.random.randbytes(self.random.randint(0, 5000))
        elif choice in (5, 6) and self.sessions:
            location = self.random.choice(self.sessions)
            method = self.random.choice(["PATCH", "PATCH", "PUT", "GET", "DELETE"])
            path = location + (f"?digest={quote(self.digest(), safe=':')}" if method == "PUT" else "")
            body = self.random.randbytes(self.random.randint(0, 20000)) if method in ("PATCH", "PUT") else b""
            if self.random.random() < 0.6:
                headers["Content-Range"] = self.random.choice([f"{self.number()}-{self.number()}", self.header_junk(), "0-0"])
        elif choice == 7:
            method, path = "PUT", f"/v2/{name}/manifests/{quote(self.reference(), safe=':')}"
            headers["Content-Type"] = self.random.choice([OCI_MANIFEST, "application/json", self.header_junk(20), ""])
            body = self.manifest()
        elif choice == 8:
            method = self.random.choice(["FOO", "PROPFIND", "TRACE", "OPTIONS", "CONNECTX", self.junk(8).upper()])
            method = "".join(c for c in method if c.isascii() and c.isalpha()) or "BREW"
            path = f"/v2/{name}/blobs/{quote(self.digest(), safe=':')}"
        elif choice == 9:
            path = "/" + quote(self.junk(200), safe="/%")
        elif choice == 10:
            method, path = "DELETE", f"/v2/{name}/{self.random.choice(['manifests', 'blobs'])}/{quote(self.reference(), safe=':')}"
        else:
            method, path = "POST", f"/v2/{REPOSITORY}/blobs/uploads/"
        return method, path, headers, body

    async def send(self, session: aiohttp.ClientSession, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        try:
            async with session.request(method, URL(self.base + path, encoded=True), headers=headers, data=body or None,
                                       allow_redirects=False) as response:
                answer = await response.read()
                status = response.status
                location = response.headers.get("Location", "")
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, UnicodeError) as error:
            self.counts[f"client_error:{type(error).__name__}"] += 1
            return
        self.counts[f"{status // 100}xx"] += 1
        if status >= 500 and len(self.first_5xx) < 10:
            self.first_5xx.append(f"{status} {method} {path[:200]} {headers} -> {answer[:300]!r}")
        if status == 202 and "/blobs/uploads/" in location and len(self.sessions) < 64:
            self.sessions.append(location)
        elif len(self.sessions) >= 64:
            self.sessions.pop(0)

    async def seed_content(self, session: aiohttp.ClientSession) -> None:
        """Push a small image, so reads also reach real content."""
        for data in (self.config, self.layer):
            async with session.post(f"{self.base}/v2/{REPOSITORY}/blobs/uploads/?digest={_digest(data)}", data=data) as r:
                if r.status != 201:
                    raise RuntimeError(f"seeding {REPOSITORY} failed: {r.status} {await r.text()}")
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, "digest": _digest(self.config), "size": len(self.config)},
                               "layers": [{"mediaType": OCI_LAYER, "digest": _digest(self.layer), "size": len(self.layer)}]})
        async with session.put(f"{self.base}/v2/{REPOSITORY}/manifests/v1", data=manifest.encode(),
                               headers={"Content-Type": OCI_MANIFEST}) as r:
            if r.status != 201:
                raise RuntimeError(f"seeding the manifest failed: {r.status} {await r.text()}")


async def run(base: str, pid: int | None, requests: int, seconds: float, concurrency: int, seed: int) -> dict[str, Any]:
    fuzzer = Fuzzer(base, seed)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    rss = {"start": rss_bytes(pid) if pid else 0, "peak": 0, "end": 0}
    rss["peak"] = rss["start"]
    sent = 0
    started = time.monotonic()
    deadline = started + seconds
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, skip_auto_headers=["User-Agent"]) as session:
        await fuzzer.seed_content(session)

        async def worker() -> None:
            nonlocal sent
            while sent < requests and time.monotonic() < deadline:
                sent += 1
                await fuzzer.send(session, *fuzzer.request())

        async def watch_memory() -> None:
            while pid and time.monotonic() < deadline and sent < requests:
                rss["peak"] = max(rss["peak"], rss_bytes(pid))
                await asyncio.sleep(0.25)

        watcher = asyncio.create_task(watch_memory())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        watcher.cancel()
    if pid:
        rss["end"] = rss_bytes(pid)
        rss["peak"] = max(rss["peak"], rss["end"])
    elapsed = time.monotonic() - started
    return {
        "requests": sent, "seconds": round(elapsed, 1), "per_second": round(sent / elapsed, 1),
        "answers": dict(sorted(fuzzer.counts.items())), "fivexx": fuzzer.counts.get("5xx", 0), "first_5xx": fuzzer.first_5xx,
        "rss_mib": {key: round(value / 2**20, 1) for key, value in rss.items()}, "seed": seed,
    }


def _own_edge(workdir: Path) -> tuple[Process, str]:
    """An edge on a free loopback port, filesystem backend in `workdir`."""
    port = free_port()
    config = workdir / "mirror.toml"
    config.write_text(
        f'[http]\naddr = "127.0.0.1:{port}"\n[storage]\ndriver = "filesystem"\ndelete = true\n'
        f'[storage.filesystem]\nrootdirectory = "{workdir / "data"}"\n[cache]\ndir = "{workdir / "cache"}"\nsize = "256MiB"\n'
        '[auth]\nanonymous = ["pull", "push", "delete"]\n'
    )
    repo_root = Path(__file__).resolve().parents[1]
    edge = Process([sys.executable, "-m", "mirror", "serve", "--config", str(config), "--log-level", "WARNING"],
                   workdir / "edge.log", cwd=workdir, env={**__import__("os").environ, "PYTHONPATH": str(repo_root)})
    edge.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
    return edge, f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running edge; without it, one is started (filesystem backend)")
    parser.add_argument("--pid", type=int, help="the running edge's pid, to watch its RSS")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=900)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rss-limit-mib", type=float, default=0, help="exit 1 when the edge's peak RSS exceeds this")
    arguments = parser.parse_args(argv)
    install_teardown()
    edge = None
    with tempfile.TemporaryDirectory(prefix="fuzz-") as scratch:
        try:
            if arguments.url:
                base, pid = arguments.url, arguments.pid
            else:
                edge, base = _own_edge(Path(scratch))
                pid = edge.pid
            summary = asyncio.run(run(base, pid, arguments.requests, arguments.seconds, arguments.concurrency, arguments.seed))
        finally:
            if edge is not None:
                edge.stop()
    print(json.dumps(summary))
    over = arguments.rss_limit_mib and summary["rss_mib"]["peak"] > arguments.rss_limit_mib
    return 1 if summary["fivexx"] or over else 0


if __name__ == "__main__":
    sys.exit(main())
