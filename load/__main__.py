"""``python -m load [--quick | --medium] [--out DIR] [--only NAME ...]``: every scenario side by side in one run.

Writes DIR (default ``load/results/<UTC timestamp>/``): results.json, results.md and one PNG per scenario.
A scenario that fails is recorded with its error and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from load import procs, profiles, report
from load.profiles import PROFILERS
from load.bench import LINK, MODES, Bench
from load.measure import Progress
from load.scenarios_cold import cold_pull
from load.scenarios_cost import cost
from load.scenarios_fleet import fleet
from load.scenarios_herd import herd
from load.scenarios_memory import memory
from load.scenarios_peers import fleet_peers
from load.scenarios_prefetch import prefetch
from load.scenarios_push import push
from load.scenarios_range import cold_range
from load.scenarios_soak import soak
from load.scenarios_sweep import sweep
from load.scenarios_warm import warm_blob, warm_manifest

SCENARIOS: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "warm_blob": warm_blob,
    "warm_manifest": warm_manifest,
    "cold_pull": cold_pull,
    "cold_range": cold_range,
    "herd": herd,
    "memory": memory,
    "fleet": fleet,
    "fleet_peers": fleet_peers,
    "push": push,
    "soak": soak,
    "sweep": sweep,
    "cost": cost,
    "prefetch": prefetch,
}


def _machine() -> str:
    return f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load", description=(__doc__ or "").splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes and two rounds: about three minutes (CI)")
    size.add_argument("--medium", action="store_true", help="256 MiB layers, three rounds: about ten minutes")
    parser.add_argument("--out", type=Path, help="output directory (default load/results/<timestamp>)")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), metavar="SCENARIO", help="run only these scenarios")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs of every process)")
    parser.add_argument("--soak-minutes", type=float, help="length of the soak scenario (default 5, medium 2; quick skips it)")
    parser.add_argument("--profile", nargs="?", const="py-spy", choices=PROFILERS, metavar="{py-spy,perf}",
                        help="sample every edge: with py-spy (the default; Python frames: profile-*.txt and .md in DIR) "
                             "or with perf (kernel and native code too: profile-*.perf.data and .md)")
    parser.add_argument("--fleet-nodes", type=int, metavar="N", help="nodes per region in fleet and fleet_peers (default: the mode's)")
    arguments = parser.parse_args(argv)
    if arguments.profile and shutil.which(arguments.profile) is None:  # said now, not after the run
        parser.error(f"--profile {arguments.profile}: {arguments.profile} is not installed")

    sizes = MODES["quick" if arguments.quick else "medium" if arguments.medium else "full"]
    if arguments.fleet_nodes:
        sizes = dataclasses.replace(sizes, fleet_nodes=arguments.fleet_nodes)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = arguments.out or Path(__file__).resolve().parent / "results" / started
    names = arguments.only or list(SCENARIOS)
    procs.install_teardown()
    progress = Progress(names)
    results: dict[str, Any] = {"mode": sizes.mode, "started": started, "machine": _machine(), "link": LINK,
                               "edge_fill": sizes.edge_fill, "scenarios": names}
    scratch = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    scratch.chmod(0o755)  # nginx workers (user nobody) read the edge's cached file in there
    clock = time.monotonic()
    bench = None
    try:
        progress.step(f"{sizes.mode} run of {', '.join(names)}; scratch {scratch}")
        if (missing := report.missing_plotting()) is not None:  # said now, not after the run
            progress.step(f"no plots will be drawn: {missing}; results.json and results.md will be")
        if arguments.profile:
            out.mkdir(parents=True, exist_ok=True)
        bench = Bench(scratch, sizes, progress, profile_dir=out if arguments.profile else None, profiler=arguments.profile or "py-spy",
                      soak_minutes=arguments.soak_minutes)
        progress.step(f"SeaweedFS at {bench.seaweed.endpoint}, pusher registry:2 at {bench.pusher.url}")
        for name in names:
            progress.scenario(name)
            scenario_clock = time.monotonic()
            try:
                results[name] = SCENARIOS[name](bench)
            except Exception as error:  # noqa: BLE001 - a broken scenario is reported, the others still run
                traceback.print_exc()
                for said in procs.dead():
                    print(said, file=sys.stderr)
                results[name] = {"error": f"{type(error).__name__}: {error}"}
            results[name]["scenario_seconds"] = round(time.monotonic() - scenario_clock, 1)
    except KeyboardInterrupt:
        progress.step("interrupted: stopping every process, writing what was measured")
        results["interrupted"] = True
    finally:
        progress.current = ""
        progress.step("stopping the bucket and the pusher")
        if bench is not None:
            bench.close()
        procs.stop_all()
        if arguments.keep:
            progress.step(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    results["elapsed_seconds"] = round(time.monotonic() - clock, 1)
    progress.step("writing results and plots")
    written = report.write(results, out)
    for collapsed in sorted(out.glob(f"profile-*{profiles.SUFFIXES[arguments.profile]}")) if arguments.profile else []:
        written.append(profiles.summarise_file(arguments.profile, collapsed))
    progress.step(f"done in {results['elapsed_seconds']:.0f}s; wrote " + ", ".join(str(path) for path in written))
    print(report.markdown(results))
    failed = [name for name in names if "error" in results.get(name, {"error": "not run"})]
    if failed:
        print(f"scenarios that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or results.get("interrupted") else 0


if __name__ == "__main__":
    raise SystemExit(main())
