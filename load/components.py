"""The contenders and the world they run in, each a real process on free loopback ports under one work dir.

    clients ─▶ edge (S3 backend) ────────────────────────────▶ emulator ─▶ SeaweedFS S3 (the bucket)
    clients ─▶ registry:2 proxy ─▶ registry:2 central (S3) ───▶ emulator ─▶ SeaweedFS S3
    clients ─▶ registry:2 central (S3, "seed setup") ──────────▶ emulator ─▶ SeaweedFS S3
    clients ─▶ nginx (sendfile of the blob file the edge cached)
    skopeo  ─▶ registry:2 "pusher" (S3, no emulator) ─────────▶ SeaweedFS S3   (setup only, never measured)

Every contender reads the bucket through an emulator of its own, so its backend egress is that emulator's
byte count and no contender's traffic shapes another's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from load import profiles
from load.procs import Process, free_port

BUCKET = "registry"
ACCESS_KEY = "bench"
SECRET_KEY = "bench-secret"


def _which(name: str, *fallbacks: str) -> str:
    for candidate in (shutil.which(name), *fallbacks):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(f"{name} is not installed (see load/README.md)")


def self_signed_for_loopback(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own trust anchor, and its key (PEM files in `directory`)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench bucket")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "bucket-cert.pem", directory / "bucket-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class SeaweedFS:
    """`weed server` with its S3 gateway: the stand-in for the Storj bucket. It answers plain HTTP on `endpoint`
    and TLS on `tls_endpoint` (a self-signed certificate, `ca_file`: real Storj is HTTPS)."""

    def __init__(self, workdir: Path) -> None:
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "s3_https")}
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.endpoint = f"http://127.0.0.1:{ports['s3']}"
        self.tls_endpoint = f"https://127.0.0.1:{ports['s3_https']}"
        self.ca_file, key_file = self_signed_for_loopback(workdir)
        self.process = Process(
            [
                _which("weed"), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
                "-s3", f"-s3.port={ports['s3']}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-s3.port.https={ports['s3_https']}", f"-s3.cert.file={self.ca_file}", f"-s3.key.file={key_file}",
                "-master.telemetry=false", "-master.volumeSizeLimitMB=1024", "-volume.max=0", "-volume.preStopSeconds=0",
            ],
            workdir / "weed.log",
        )
        self.process.wait_http(f"{self.endpoint}/", timeout=60)
        self._create_bucket()

    def _create_bucket(self) -> None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1", config=Config(retries={"max_attempts": 10, "mode": "standard"}),
        )
        client.create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        self.process.stop(timeout=3)  # a graceful weed shutdown takes 15 s; its data is scratch anyway


class Emulator:
    """`python -m load.emulator` in front of the bucket; `stats()` reads its counters."""

    def __init__(self, workdir: Path, upstream: str, link: dict[str, Any], seed: int) -> None:
        self.port, control = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.control_url = f"http://127.0.0.1:{control}/stats"
        argv = [sys.executable, "-m", "load.emulator", "--listen", f"127.0.0.1:{self.port}",
                "--upstream", upstream.split("://", 1)[1], "--control", f"127.0.0.1:{control}", "--seed", str(seed)]
        for key, value in link.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        self.process = Process(argv, workdir / f"emulator-{self.port}.log", cwd=_load_root(), env=_python_env())
        self.process.wait_http(self.control_url, timeout=20)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.control_url, timeout=10) as response:
            return json.loads(response.read())

    def bytes_down(self) -> int:
        return int(self.stats()["bytes_down"])

    def stop(self) -> None:
        self.process.stop(timeout=5)


class Registry2:
    """Debian's docker-registry 2.8: central (S3 driver) or pull-through proxy (filesystem storage)."""

    def __init__(self, workdir: Path, storage: str, proxy_of: str | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        proxy = f"proxy: {{remoteurl: '{proxy_of}'}}\n" if proxy_of else ""
        (workdir / "config.yml").write_text(
            "version: 0.1\n"
            "log: {level: error, accesslog: {disabled: true}}\n"
            f"storage:\n{storage}"
            "  cache: {blobdescriptor: inmemory}\n"
            # 2.8 starts its upload purge after rand(0..59) minutes, so 1 start in 60 purges at once, and its S3 walk
            # panics on an empty prefix (distribution#4590): the registry dies mid-scenario (CI: cold_range refused)
            "  maintenance: {uploadpurging: {enabled: false}}\n"
            "  redirect: {disable: true}\n"
            "  delete: {enabled: true}\n"
            f"http: {{addr: '127.0.0.1:{self.port}'}}\n" + proxy
        )
        self.workdir = workdir
        self.process = Process([_which("docker-registry"), "serve", str(workdir / "config.yml")], workdir / "registry.log",
                               unset_env=["AWS_CA_BUNDLE"])  # its Go SDK panics on that variable
        self.process.wait_http(f"{self.url}/v2/", timeout=30)

    @classmethod
    def s3(cls, workdir: Path, endpoint: str) -> Registry2:
        return cls(workdir, (
            f"  s3: {{region: us-east-1, regionendpoint: '{endpoint}', bucket: {BUCKET}, accesskey: {ACCESS_KEY},\n"
            f"       secretkey: {SECRET_KEY}, secure: false, v4auth: true, chunksize: 5242880}}\n"
        ))

    @classmethod
    def proxy(cls, workdir: Path, remote_url: str) -> Registry2:
        return cls(workdir, f"  filesystem: {{rootdirectory: '{workdir / 'root'}'}}\n", proxy_of=remote_url)

    def stop(self) -> None:
        self.process.stop(timeout=10)
        shutil.rmtree(self.workdir / "root", ignore_errors=True)  # a proxy's cache: a full run would fill the disk


class Edge:
    """The edge mirror (`python -m mirror serve`) of this checkout, S3 backend through an emulator."""

    def __init__(self, workdir: Path, endpoint: str, fill: dict[str, Any] | None = None, cache_size: str = "50GiB",
                 profile: Path | None = None, port: int | None = None, peers: dict[str, Any] | None = None,
                 upload: dict[str, Any] | None = None, ca_file: Path | None = None, profiler: str = "py-spy") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = port or free_port()  # chosen up front when the region's other edges must know it
        self.url = f"http://127.0.0.1:{self.port}"
        settings = dict(fill or {})  # empty: the product's [fill] defaults
        fill_lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
        upload_lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in (upload or {}).items())  # empty: defaults
        self.config = workdir / "mirror.toml"
        self.config.write_text(
            f'[http]\naddr = "127.0.0.1:{self.port}"\n'
            # Every simulated node's runtime connects from 127.0.0.1 here: one address may hold them all.
            "max_connections = 4096\nmax_connections_per_client = 4096\n"
            '[storage]\ndriver = "s3"\n'
            f'[storage.s3]\nregion = "us-east-1"\nregionendpoint = "{endpoint}"\nbucket = "{BUCKET}"\n'
            f'accesskey = "{ACCESS_KEY}"\nsecretkey = "{SECRET_KEY}"\nrootdirectory = ""\n'
            f'[cache]\ndir = "{workdir / "cache"}"\nsize = "{cache_size}"\ntag_ttl = "30s"\n'
            f"[fill]\n{fill_lines}"
            f"[upload]\n{upload_lines}"
            # The memory scenario pushes through the edge; edges refuse anonymous pushes unless told otherwise.
            '[auth]\nanonymous = ["pull", "push"]\n'
            '[log]\naccess = false\n'  # as nginx runs here (access_log off): compare serving, not logging
            + ("[peers]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in peers.items()) if peers else "")
        )
        self.fill = settings
        self.process = Process([sys.executable, "-m", "mirror", "serve", "--config", str(self.config), "--log-level", "WARNING"],
                               workdir / "mirror.log", cwd=workdir,
                               env={**_python_env(), **({"AWS_CA_BUNDLE": str(ca_file)} if ca_file else {})})
        self.process.wait_http(f"{self.url}/v2/", timeout=120 if peers else 30)  # a region's edges start together
        self.profiler: Process | None = None
        if profile is not None:  # the profiler samples the edge until it exits, then writes its file
            self.profile = profile
            command = profiles.record_command(profiler, self.process.pid, profile)
            self.profiler = Process([_which(command[0]), *command[1:]], workdir / f"{command[0]}.log")

    def metrics(self) -> dict[str, float]:
        """The /metrics samples, as ``name{labels}`` → value."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{name}="{value}"' for name, value in sample.labels.items())
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def content_files(self) -> list[Path]:
        cache = self.workdir / "cache"
        return [path for path in cache.rglob("*") if path.is_file() and path.stat().st_size > 0]

    def stop(self) -> None:
        self.process.stop(timeout=10)
        shutil.rmtree(self.workdir / "cache", ignore_errors=True)  # GiBs per edge in a full run; the log stays
        if self.profiler is not None:
            try:
                self.profiler.popen.wait(20)  # it writes its output when the edge is gone
            finally:
                self.profiler.stop(timeout=5)


class Nginx:
    """nginx serving one directory with sendfile: the local-serving limit for a warm blob."""

    def __init__(self, workdir: Path, root: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "tmp").mkdir(exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "nginx.conf"
        config.write_text(
            f"daemon off; worker_processes 1; pid {workdir}/nginx.pid; error_log {workdir}/error.log;\n"
            "events { worker_connections 1024; }\n"
            "http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;\n"
            f"  client_body_temp_path {workdir}/tmp; proxy_temp_path {workdir}/tmp; fastcgi_temp_path {workdir}/tmp;\n"
            f"  uwsgi_temp_path {workdir}/tmp; scgi_temp_path {workdir}/tmp;\n"
            f"  server {{ listen 127.0.0.1:{self.port}; root {root}; default_type application/octet-stream; }} }}\n"
        )
        self.process = Process([_which("nginx", "/usr/sbin/nginx"), "-c", str(config), "-p", str(workdir)], workdir / "nginx.log")
        self.process.wait_http(f"{self.url}/", timeout=20, ok=(200, 403, 404))

    def stop(self) -> None:
        self.process.stop(timeout=5)


def _load_root() -> Path:
    """The directory that holds the `load` package (so `python -m load.emulator` finds it)."""
    return Path(__file__).resolve().parents[1]


def _python_env() -> dict[str, str]:
    """Our environment with PYTHONPATH naming this `load` package and the `mirror` package we import, so the
    children run this checkout's code rather than whatever edge-mirror install site-packages points at."""
    paths = [str(_load_root())]
    spec = importlib.util.find_spec("mirror")
    if spec is not None and spec.origin is not None:
        paths.append(str(Path(spec.origin).resolve().parents[1]))
    existing = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": ":".join(dict.fromkeys(paths + ([existing] if existing else [])))}
