"""The link emulator's own ceiling on this machine: ``python -m load.ceiling [--size-mib 1024]``.

Moves one file of `--size-mib` through an emulator with no delays and no caps, read by curl (a C client, so
the reader is not the bottleneck), from two upstreams: nginx with sendfile (what the emulator alone can do)
and SeaweedFS's S3 server (the chain the benchmark really uses). Prints MB/s for one stream and for four
parallel ranged streams, direct and through the emulator, and the emulator's CPU seconds per GiB moved.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from load import procs
from load.components import BUCKET, Nginx, SeaweedFS
from load.procs import Process, cpu_seconds, free_port

MIB = 1024 * 1024


def _curl(urls: list[str]) -> float:
    """Seconds for all `urls` (each `url|range`) fetched at once by curl into /dev/null."""
    started = time.perf_counter()
    running = []
    for entry in urls:
        url, _, byte_range = entry.partition("|")
        argv = ["curl", "-sf", "-o", "/dev/null", url] + (["-r", byte_range] if byte_range else [])
        running.append(subprocess.Popen(argv))
    for process in running:
        if process.wait(600) != 0:
            raise RuntimeError(f"curl failed on {urls}")
    return time.perf_counter() - started


def _measure(base: str, emulator: Process, size: int) -> dict[str, float]:
    quarter = size // 4
    ranges = [f"{base}|{i * quarter}-{(i + 1) * quarter - 1}" for i in range(4)]
    cpu = cpu_seconds(emulator.pid)
    one = _curl([base])
    four = _curl(ranges)
    cpu = cpu_seconds(emulator.pid) - cpu
    return {"one_stream_MBps": size / one / 1e6, "four_streams_MBps": 4 * quarter / four / 1e6,
            "emulator_cpu_seconds_per_GiB": cpu / (size + 4 * quarter) * 2**30}


def _emulator(upstream: str, workdir: Path) -> tuple[Process, str]:
    port = free_port()
    process = Process(["python3", "-m", "load.emulator", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
                       "--ttfb-fast-ms", "0", "--ttfb-slow-ms", "0", "--conn-bandwidth", "0", "--aggregate-bandwidth", "0",
                       "--control", f"127.0.0.1:{free_port()}"],
                      workdir / f"emulator-{port}.log", cwd=Path(__file__).resolve().parents[1])
    time.sleep(1.0)
    if not process.alive():
        raise RuntimeError(process.log_tail())
    return process, f"127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m load.ceiling", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    arguments = parser.parse_args(argv)
    size = arguments.size_mib * MIB
    procs.install_teardown()
    workdir = Path(tempfile.mkdtemp(prefix="emulator-ceiling-"))
    workdir.chmod(0o755)
    results: dict[str, Any] = {"bytes": size}
    try:
        root = workdir / "root"
        root.mkdir()
        rng = random.Random(7)
        with open(root / "blob", "wb") as out:
            out.writelines(rng.randbytes(8 * MIB) for _ in range(arguments.size_mib // 8))
        nginx = Nginx(workdir / "nginx", root)
        emulator, address = _emulator(f"127.0.0.1:{nginx.port}", workdir)
        results["nginx_direct"] = _measure(f"{nginx.url}/blob", emulator, size)
        results["nginx_through_emulator"] = _measure(f"http://{address}/blob", emulator, size)
        nginx.stop()

        import boto3

        seaweed = SeaweedFS(workdir / "seaweed")
        s3 = boto3.client("s3", endpoint_url=seaweed.endpoint, aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
        s3.upload_file(str(root / "blob"), BUCKET, "blob")
        emulator2, address2 = _emulator(seaweed.endpoint.split("://", 1)[1], workdir)
        results["seaweed_direct"] = _measure(f"{seaweed.endpoint}/{BUCKET}/blob", emulator2, size)
        results["seaweed_through_emulator"] = _measure(f"http://{address2}/{BUCKET}/blob", emulator2, size)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    for name, figures in results.items():
        if isinstance(figures, dict):
            print(f"{name:26s} one stream {figures['one_stream_MBps']:7.0f} MB/s   four streams {figures['four_streams_MBps']:7.0f} MB/s")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
