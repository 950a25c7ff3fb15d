"""``python -m load [--quick] [--out DIR] [--only NAME ...]``: run the scenarios side by side, write the report."""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

from load import report
from load.bench import FULL, QUICK, Bench, Progress
from load.components import World
from load.emulator import MB
from load.scenarios_cold import cold_pull, herd
from load.scenarios_fleet import fleet, memory
from load.scenarios_warm import warm_blob, warm_manifest

SCENARIOS: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "warm_blob": warm_blob,
    "warm_manifest": warm_manifest,
    "cold_pull": cold_pull,
    "herd": herd,
    "memory": memory,
    "fleet": fleet,
}
LINK = {"ttfb_fast_ms": 80, "ttfb_slow_ms": 400, "slow_fraction": 0.2, "conn_bandwidth": "20MB", "aggregate_bandwidth": "400MB"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI (about three minutes)")
    parser.add_argument("--out", type=Path, help="output directory (default load/results/<timestamp>)")
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="run only these scenarios")
    arguments = parser.parse_args(argv)

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = arguments.out or Path("load/results") / started
    names = arguments.only or list(SCENARIOS)
    progress = Progress(len(names))
    results: dict[str, Any] = {"mode": "quick" if arguments.quick else "full", "started": started, "link": LINK}
    failed: list[str] = []
    sizes = QUICK if arguments.quick else FULL
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as scratch:
        world = World(Path(scratch), LINK, edge_part_size=sizes.edge_part_size)
        try:
            for name in names:
                progress.scenario(name)
                bench = Bench(world, sizes, Path(scratch) / name, progress, 400 * MB)
                try:
                    results[name] = SCENARIOS[name](bench)
                except Exception as error:  # noqa: BLE001 - a broken scenario is reported, the others still run
                    traceback.print_exc()
                    results[name] = {"error": f"{type(error).__name__}: {error}"}
                    failed.append(name)
                finally:
                    world.stop_contenders()
        finally:
            world.close()
    report.write(results, out)
    print(report.markdown(results))
    print(f"wrote {out}/results.json, results.md, results.png", file=sys.stderr)
    if failed:
        print(f"scenarios that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
