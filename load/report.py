"""The run's outputs: results.json, results.md (headline figures against the product's targets, then the raw
figures per contender) and one PNG per scenario."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

# (key, target, higher is better): the product's goals from the benchmark issue — read against, never gated on.
TARGETS: list[tuple[str, float | None, bool]] = [
    ("warm_blob.ratio_vs_nginx", 1.0, True),
    ("warm_blob.ratio_vs_registry_proxy", None, True),
    ("warm_manifest.ratio_vs_registry_proxy", 3.0, True),
    ("cold_pull.speedup_vs_registry_direct", 10.0, True),
    ("cold_pull.speedup_vs_registry_proxy", 10.0, True),
    ("cold_pull.ttfb_excess_ms", 50.0, False),
    ("cold_pull.link_utilisation", 0.8, True),
    ("cold_pull.by_layer_size.256MiB.speedup_vs_registry_direct", 8.0, True),
    ("cold_pull.by_layer_size.48MiB.speedup_vs_registry_direct", 8.0, True),
    ("cold_pull.ceiling_link_utilisation", None, True),
    ("cold_pull.edge_over_ceiling", None, False),
    ("cold_pull.edge_cpu_seconds_per_gib", None, False),
    ("cold_pull.backend_bytes_ratio", 1.05, False),
    ("cold_range.speedup_vs_registry_direct", None, True),
    ("cold_range.speedup_vs_registry_proxy", None, True),
    ("cold_range.trickle_bucket_bytes_over_blob", 1.05, False),
    ("herd.backend_bytes_ratio", 1.02, False),
    ("herd.edge_read_bytes_ratio", None, False),
    ("herd.p99_over_single", 1.25, False),
    ("herd.p99_over_ceiling", None, False),
    ("herd.best_p99_over_single", None, False),
    ("memory.peak_rss_mib", 200.0, False),
    ("push.speedup_vs_sequential", 5.0, True),
    ("push.speedup_vs_registry2", None, True),
    ("push.peak_rss_mib", None, False),
    ("fleet.egress_ratio_vs_registry_proxy", None, False),
    ("fleet.p99_ratio_vs_registry_proxy", None, False),
    ("fleet.simulated.egress_ratio_vs_registry_proxy", None, False),
    ("fleet.simulated.p99_ratio_vs_registry_proxy", None, False),
    ("fleet.simulated.validation.egress_ratio_error", None, False),
    ("fleet.simulated.validation.p99_ratio_error", None, False),
    ("fleet_peers.egress_ratio_sharing_vs_isolated", None, False),
    ("fleet_peers.p99_ratio_sharing_vs_isolated", None, False),
    ("fleet_peers.simulated.egress_ratio_sharing_vs_isolated", None, False),
    ("soak.rss_growth_ratio", 1.10, False),
    ("soak.fd_growth", 0.0, False),
    ("sweep.layer_size.edge_exponent", None, False),
    ("sweep.layers.edge_exponent", None, False),
    ("sweep.herd.p99_exponent", None, False),
    ("sweep.herd.p99_over_smallest_at_largest", None, False),
    ("sweep.fills.peak_rss_mib", 200.0, False),
    ("sweep.fills.rss_mib_per_fill", None, False),
    ("cost.cpu_seconds_per_gib.edge_cold_link", 1.5, False),
    ("cost.cpu_seconds_per_gib.edge_cold_bucket", 1.5, False),
    ("cost.cpu_seconds_per_gib.edge_warm", 0.2, False),
    ("cost.cpu_seconds_per_gib.edge_push", 3.0, False),
    ("cost.cpu_seconds_per_gib.edge_push_again", 3.0, False),
    ("cost.cpu_seconds_per_gib.edge_cold_bucket_tls", 1.5, False),
    ("cost.cpu_seconds_per_gib.edge_push_tls", 3.0, False),
    ("cost.cpu_seconds_per_gib.edge_push_tls_again", 3.0, False),
    ("cost.cpu_seconds_per_gib.floor_cold", None, False),
    ("cost.cpu_seconds_per_gib.floor_warm", None, False),
    ("cost.cpu_seconds_per_gib.floor_push_signed", None, False),
    ("cost.cpu_seconds_per_gib.floor_push_stack", None, False),
    ("cost.cpu_seconds_per_gib.floor_push_tls_stack", None, False),
    ("cost.cpu_seconds_per_gib.floor_push_stack_rewrite", None, False),
    ("cost.cpu_seconds_per_gib.floor_push_tls_stack_rewrite", None, False),
    ("cost.pinned_over_unpinned.link", None, True),
    ("cost.pinned_over_unpinned.bucket", None, True),
    ("prefetch.speedup_vs_registry_direct", 5.0, True),
    ("prefetch.speedup_vs_edge_without_prefetch", None, True),
    ("prefetch.bucket_bytes_over_image_bytes", 1.05, False),
    ("prefetch.edge_over_ceiling", None, False),
    ("prefetch.best_speedup_vs_registry_direct", None, True),
    ("prefetch.edge_over_ceiling_with_manifest", None, False),
]
CONTENDERS = ["edge", "edge_parallel20", "edge_warm", "nginx", "registry_direct", "registry_proxy"]
COLOURS = {"edge": "#1f77b4", "edge_parallel20": "#9ecae1", "edge_warm": "#17becf", "nginx": "#2ca02c", "registry_direct": "#d62728",
           "registry_proxy": "#ff7f0e"}


def lookup(results: dict[str, Any], dotted: str) -> Any:
    value: Any = results
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))


def _fmt(value: Any, scale: float = 1.0, digits: int = 3) -> str:
    if not _number(value):
        return "—"
    scaled = value / scale
    return f"{scaled:,.0f}" if abs(scaled) >= 10 ** digits else f"{scaled:.{digits}g}"


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Edge mirror benchmark — {results['mode']} run, {results['started']}", "",
             f"{results.get('elapsed_seconds', 0):.0f} s on {results.get('machine', '?')}. Link: {results['link']}.", "",
             "| measure | edge | target | meets |", "|---|---|---|---|"]
    for key, target, higher in TARGETS:
        value = lookup(results, key)
        bound = "—" if target is None else f"{'≥' if higher else '≤'} {target:g}"
        meets = "—" if target is None or not _number(value) else ("yes" if (value >= target if higher else value <= target) else "**no**")
        lines.append(f"| `{key}` | {_fmt(value)} | {bound} | {meets} |")
    rows: list[tuple[str, dict[str, Any], float]] = []

    def row(label: str, values: dict[str, Any] | None, scale: float = 1.0) -> None:
        if values:
            rows.append((label, values, scale))

    warm_blob, manifest = results.get("warm_blob", {}), results.get("warm_manifest", {})
    cold, herd, fleet = results.get("cold_pull", {}), results.get("herd", {}), results.get("fleet", {})
    row(f"warm blob GB/s ({warm_blob.get('connections')} connections)", warm_blob.get("bytes_per_second"), 1e9)
    if manifest.get("requests_per_second"):
        row("warm manifest GET by tag, req/s", {k: v["get_by_tag"] for k, v in manifest["requests_per_second"].items()})
        row("warm manifest HEAD by digest, req/s", {k: v["head_by_digest"] for k, v in manifest["requests_per_second"].items()})
    row("cold pull, s", cold.get("seconds"))
    row(f"cold blob TTFB, mean (bare link: {_fmt(cold.get('link_ttfb_seconds'), 1e-3)}), ms", cold.get("cold_blob_ttfb_seconds"), 1e-3)
    row("cold big blob TTFB within the pull, ms", cold.get("big_blob_ttfb_in_pull_seconds"), 1e-3)
    row("cold big blob MB/s", cold.get("big_blob_bytes_per_second"), 1e6)
    for key, label in (("backend_bytes_ratio", "herd backend bytes / image"), ("single_seconds", "herd single cold pull, s"),
                       ("p50_seconds", "herd p50, s"), ("p99_seconds", "herd p99, s")):
        row(label, {name: herd[name][key] for name in CONTENDERS if isinstance(herd.get(name), dict)})
    for key, label, scale in (("egress_bytes", "fleet egress, MiB", 2**20), ("hit_ratio_by_bytes", "fleet hit ratio by bytes", 1),
                              ("p50_seconds", "fleet p50, s", 1), ("p99_seconds", "fleet p99, s", 1)):
        row(label, {name: fleet[name][key] for name in CONTENDERS if isinstance(fleet.get(name), dict)}, scale)
    simulated = fleet.get("simulated", {}) if isinstance(fleet.get("simulated"), dict) else {}
    for key, label, scale in (("egress_bytes", "egress, MiB", 2**20), ("p50_seconds", "p50, s", 1), ("p99_seconds", "p99, s", 1)):
        row(f"fleet simulated {simulated.get('regions')}×{simulated.get('nodes_per_region')} {label}",
            {name: simulated[name][key] for name in CONTENDERS if isinstance(simulated.get(name), dict)}, scale)
    columns = [name for name in CONTENDERS if any(_number(values.get(name)) for _, values, _ in rows)]
    lines += ["", "## Raw figures (medians over rounds)", "", "| figure | " + " | ".join(columns) + " |",
              "|---|" + "---|" * len(columns)]
    lines += [f"| {label} | " + " | ".join(_fmt(values.get(name), scale) for name in columns) + " |" for label, values, scale in rows]
    memory = results.get("memory", {})
    if memory and "error" not in memory:
        push = memory.get("push", {})
        lines += ["", f"Memory: edge idle {_fmt(memory.get('baseline_rss_mib'))} MiB, four concurrent "
                  f"{_fmt(memory.get('fill_bytes'), 2**20)} MiB fills peak {_fmt(memory.get('fills_peak_rss_mib'))} MiB, "
                  + (f"push skipped ({push['skipped']})." if "skipped" in push else
                     f"{_fmt(memory.get('push_bytes'), 2**20)} MiB push peak {_fmt(memory.get('push_peak_rss_mib'))} MiB "
                     f"in {_fmt(push.get('seconds'))} s.")]
    soak = results.get("soak", {})
    if soak and "error" not in soak and "skipped" not in soak:
        lines += ["", f"Soak: {_fmt(soak.get('minutes'))} min, {sum(soak.get('requests', {}).values())} requests "
                  f"({soak.get('mix')} by weight), failures {soak.get('failures')}, 5xx {_fmt(soak.get('status_5xx'))}; "
                  f"RSS {_fmt(soak.get('rss_after_warm_up_mib'))} MiB after warm-up, "
                  f"max {_fmt(soak.get('max_rss_second_half_mib'))} MiB in the second half."]
    lines += _sweep_lines(results.get("sweep", {}))
    lines += _cost_lines(results.get("cost", {}))
    lines += _comparator_lines(results)
    failed = [name for name, value in results.items() if isinstance(value, dict) and "error" in value]
    for name in failed:
        lines += ["", f"**{name} failed**: `{results[name]['error']}`"]
    if results.get("plots_skipped"):
        lines += ["", f"No plots: {results['plots_skipped']}"]
    return "\n".join(lines) + "\n"


def _comparator_lines(results: dict[str, Any]) -> list[str]:
    """Each comparator that failed in a scenario (after retries): its figures are blank above, here is why."""
    lines: list[str] = []
    for scenario, value in results.items():
        errors = value.get("comparator_errors") if isinstance(value, dict) else None
        for name, reasons in (errors or {}).items():
            lines.append(f"- {scenario}: {name} failed {len(reasons)}×, its figures left blank: {reasons[-1]}")
    return ["", "Comparators that failed:", "", *lines] if lines else []


def _cost_lines(cost: dict[str, Any]) -> list[str]:
    """CPU seconds per GiB of each serving process, then the fills unpinned and pinned to one core."""
    per_gib = cost.get("cpu_seconds_per_gib")
    if not per_gib:
        return []
    system = cost.get("system_seconds_per_gib") or {}
    lines = ["", f"Cost, CPU seconds per GiB ({_fmt(cost.get('blob_bytes'), 2**20)} MiB blob; the serving process only; "
             "system: the kernel's part, page-cache and socket copies and page faults):", "",
             "| what | CPU-s/GiB | of which system |", "|---|---|---|",
             *[f"| {name} | {_fmt(value)} | {_fmt(system.get(name))} |" for name, value in per_gib.items()]]
    lines += ["", f"Cost, cold fill with the edge pinned to core {cost.get('pinned_core')} (cores busy: CPU seconds / wall seconds):", "",
              "| fill | MB/s | edge CPU-s/GiB | cores busy | busiest |", "|---|---|---|---|---|"]
    for chain in ("edge_link", "edge_bucket"):
        for mode in ("unpinned", "pinned"):
            step = cost.get(chain, {}).get(mode)
            if isinstance(step, dict):
                busy = ", ".join(f"{name} {_fmt(value)}" for name, value in step["cores_busy"].items())
                lines.append(f"| {chain} {mode} | {_fmt(step['megabytes_per_second'])} | "
                             f"{_fmt(step['cpu_seconds_per_gib'].get('edge'))} | {busy} | {step['busiest']} |")
    return lines


def _sweep_lines(sweep: dict[str, Any]) -> list[str]:
    """One small table per sweep curve: the points, edge next to registry:2 direct where it ran."""
    lines: list[str] = []
    curves = (("layer_size", "cold pull by layer size", "label", ("edge_seconds", "registry_direct_seconds", "speedup_vs_registry_direct")),
              ("layers", "cold pull by layers per image", "layers", ("edge_seconds", "registry_direct_seconds", "speedup_vs_registry_direct")),
              ("herd", "herd of N cold pulls, one image, one edge", "pulls", ("p50_seconds", "p99_seconds", "backend_bytes_ratio")),
              ("fills", "edge RSS during N concurrent cold fills", "fills", ("peak_rss_mib", "baseline_rss_mib", "seconds")))
    for key, title, x, columns in curves:
        points = sweep.get(key, {}).get("points")
        if not points:
            continue
        lines += ["", f"Sweep, {title}:", "", f"| {x} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        lines += [f"| {point[x]} | " + " | ".join(_fmt(point.get(column)) for column in columns) + " |" for point in points]
        lines += [f"- {x} {point[x]}: registry:2 direct failed: {point['registry_direct_error']}"
                  for point in points if "registry_direct_error" in point]
    return lines


def _curves(axis: Any, x: list[float], series: dict[str, list[Any]], title: str, xlabel: str, ylabel: str, log: bool = True) -> None:
    """Cost against work, one line per series (points where a series has no value are left out)."""
    for name, values in series.items():
        pairs = [(a, b) for a, b in zip(x, values) if _number(b)]
        if pairs:
            axis.plot([a for a, _ in pairs], [b for _, b in pairs], marker="o", label=name, color=COLOURS.get(name))
    if log:  # log-log: a straight line is a power law, its slope the exponent (1 = linear growth)
        from matplotlib.ticker import FuncFormatter

        plain = FuncFormatter(lambda value, _: f"{value:g}")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.xaxis.set_major_formatter(plain)
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_minor_formatter(plain)
        axis.tick_params(axis="y", which="minor", labelsize=7)
    axis.margins(y=0.12)  # room for the ratio labels above the top points
    axis.set_title(title, fontsize=10)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)


def _bars(axis: Any, values: dict[str, float], title: str, unit: str, scale: float = 1.0) -> None:
    names = [name for name in CONTENDERS if _number(values.get(name))] + [n for n in values if n not in CONTENDERS and _number(values[n])]
    heights = [values[name] / scale for name in names]
    axis.bar(names, heights, color=[COLOURS.get(name.split()[0], "#7f7f7f") for name in names])
    for index, height in enumerate(heights):
        axis.annotate(f"{height:.3g}", (index, height), ha="center", va="bottom", fontsize=9)
    axis.set_title(title, fontsize=10)
    axis.set_ylabel(unit)
    axis.tick_params(axis="x", labelsize=8)


def _cdf(axis: Any, series: dict[str, list[float]], title: str) -> None:
    for name, values in series.items():
        ordered = sorted(values)
        axis.step(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], where="post", label=name, color=COLOURS.get(name))
    axis.set_title(title, fontsize=10)
    axis.set_xlabel("pull seconds")
    axis.set_ylabel("fraction of pulls")
    axis.legend(fontsize=8)


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def figure(name: str, panels: int, draw: Callable[[list[Any]], None]) -> Path | None:
        data = results.get(name)
        if not isinstance(data, dict) or "error" in data or "skipped" in data:
            return None
        fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
        draw(list(axes[0]))
        fig.suptitle(f"{name} ({results['mode']})")
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path

    def warm_blob(ax: list[Any]) -> None:
        data = results["warm_blob"]
        _bars(ax[0], data["bytes_per_second"], f"warm blob, {data['connections']} connections (higher is better)", "GB/s", 1e9)

    def warm_manifest(ax: list[Any]) -> None:
        rates = results["warm_manifest"]["requests_per_second"]
        _bars(ax[0], {k: v["get_by_tag"] for k, v in rates.items()}, "GET by tag (higher is better)", "req/s")
        _bars(ax[1], {k: v["head_by_digest"] for k, v in rates.items()}, "HEAD by digest (higher is better)", "req/s")

    def cold_pull(ax: list[Any]) -> None:
        data = results["cold_pull"]
        _bars(ax[0], data["seconds"], "cold pull wall time (lower is better)", "s")
        _bars(ax[1], {**data["cold_blob_ttfb_seconds"], "bare link": data["link_ttfb_seconds"]},
              "cold blob time to first byte (mean)", "ms", 1e-3)

    def herd(ax: list[Any]) -> None:
        data = results["herd"]
        _bars(ax[0], {n: data[n]["backend_bytes_ratio"] for n in ("edge", "registry_proxy") if n in data},
              f"{data['pulls']} pulls: backend bytes / image (lower is better)", "×")
        _cdf(ax[1], {n: data[n]["pull_seconds"] for n in ("edge", "edge_warm", "nginx", "registry_proxy") if n in data}, "herd pull times")

    def memory(ax: list[Any]) -> None:
        data = results["memory"]
        peaks = {"idle": data.get("baseline_rss_mib"), "4 fills": data.get("fills_peak_rss_mib"), "push": data.get("push_peak_rss_mib")}
        _bars(ax[0], {k: v for k, v in peaks.items() if _number(v)}, "edge peak RSS (target ≤ 200 MiB)", "MiB")

    def push(ax: list[Any]) -> None:
        data = results["push"]
        contenders = ("edge", "edge_sequential", "registry2", "edge_no_link")
        _bars(ax[0], {n: data[n]["seconds"] for n in contenders if isinstance(data.get(n), dict)},
              f"{data['bytes'] >> 20} MiB push, PATCH to PUT answer (lower is better)", "s")

    def fleet(ax: list[Any]) -> None:
        data = results["fleet"]
        _bars(ax[0], {n: data[n]["egress_bytes"] for n in ("edge", "registry_proxy")}, "backend egress (lower is better)", "MiB", 2**20)
        _cdf(ax[1], {n: data[n]["pull_seconds"] for n in ("edge", "registry_proxy")}, "fleet pull times")
        simulated = data.get("simulated")
        if isinstance(simulated, dict) and "edge" in simulated:
            size = f"simulated {simulated['regions']}×{simulated['nodes_per_region']}"
            _bars(ax[2], {n: simulated[n]["egress_bytes"] for n in ("edge", "registry_proxy")}, f"{size}: egress", "GiB", 2**30)
            _bars(ax[3], {f"{n}\n{q}": simulated[n][f"{q}_seconds"] for n in ("edge", "registry_proxy") for q in ("p50", "p99")},
                  f"{size}: pull time", "s")
            check = simulated["validation"]
            ax[2].set_xlabel(f"model error at the real size: edge {check['edge']['egress_bytes_error']:+.0%}, "
                             f"proxy {check['registry_proxy']['egress_bytes_error']:+.0%}", fontsize=8)
            ax[3].set_xlabel(f"p99 error at the real size: edge {check['edge']['p99_seconds_error']:+.0%}, "
                             f"proxy {check['registry_proxy']['p99_seconds_error']:+.0%}", fontsize=8)

    def cold_range(ax: list[Any]) -> None:
        data = results["cold_range"]
        _bars(ax[0], data["footer_seconds"], "cold blob: eStargz footer (lower is better)", "ms", 1e-3)
        _bars(ax[1], data["ranges_seconds"], "then 16 scattered 64 KiB ranges", "ms", 1e-3)

    def soak(ax: list[Any]) -> None:
        series = results["soak"].get("series", [])
        seconds = [sample["t"] for sample in series]
        ax[0].plot(seconds, [sample["rss_mib"] for sample in series])
        ax[0].set_title("edge RSS over the soak (flat is good)")
        ax[0].set_xlabel("s")
        ax[0].set_ylabel("MiB")
        ax[0].set_ylim(bottom=0)
        ax[1].plot(seconds, [sample["fds"] for sample in series])
        ax[1].set_title("edge open file descriptors")
        ax[1].set_xlabel("s")
        ax[1].set_ylim(bottom=0)

    def sweep(ax: list[Any]) -> None:
        data = results["sweep"]
        if "points" in data.get("layer_size", {}):
            points = data["layer_size"]["points"]
            x = [p["layer_bytes"] / 2**20 for p in points]
            _curves(ax[0], x, {"edge": [p["edge_seconds"] for p in points],
                               "registry_direct": [p.get("registry_direct_seconds") for p in points]},
                    "cold pull of a one-layer image (lower is better)", "layer MiB", "s")
            for size, point in zip(x, points):
                if _number(point.get("speedup_vs_registry_direct")):
                    ax[0].annotate(f"{point['speedup_vs_registry_direct']:.1f}×", (size, point["registry_direct_seconds"]),
                                   textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        if "points" in data.get("layers", {}):
            points = data["layers"]["points"]
            _curves(ax[1], [p["layers"] for p in points], {"edge": [p["edge_seconds"] for p in points],
                                                           "registry_direct": [p.get("registry_direct_seconds") for p in points]},
                    f"cold pull by layers of {data['layers']['layer_bytes'] / 2**20:g} MiB", "layers per image", "s")
        if "points" in data.get("herd", {}):
            points = data["herd"]["points"]
            _curves(ax[2], [p["pulls"] for p in points], {"p50": [p["p50_seconds"] for p in points], "p99": [p["p99_seconds"] for p in points]},
                    f"herd on one edge ({data['herd']['image_bytes'] / 2**20:.0f} MiB image)", "simultaneous cold pulls", "s")
        if "points" in data.get("fills", {}):
            points = data["fills"]["points"]
            _curves(ax[3], [p["fills"] for p in points], {"peak": [p["peak_rss_mib"] for p in points], "idle": [p["baseline_rss_mib"] for p in points]},
                    f"edge RSS, concurrent {data['fills']['blob_bytes'] / 2**20:g} MiB cold fills", "concurrent fills", "MiB", log=False)
            ax[3].axhline(200, color="#d62728", linestyle="--", linewidth=1, label="target 200 MiB")
            ax[3].set_ylim(bottom=0)
            ax[3].legend(fontsize=8)

    panels = {"cold_range": (2, cold_range), "warm_blob": (1, warm_blob), "warm_manifest": (2, warm_manifest), "cold_pull": (2, cold_pull),
              "herd": (2, herd), "memory": (1, memory), "push": (1, push), "fleet": (4, fleet),
              "soak": (2, soak), "sweep": (4, sweep)}
    written = [figure(name, count, draw) for name, (count, draw) in panels.items()]
    return [path for path in written if path is not None]


def missing_plotting() -> str | None:
    """Why no plots can be drawn here (matplotlib, from the `bench` extra, is missing), or None."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        return f"{error} (install the bench extra: pip install -e '.[bench]')"
    return None


def write(results: dict[str, Any], out: Path) -> list[Path]:
    """results.json and results.md first, then the plots if matplotlib is here (a run's figures never depend on it)."""
    out.mkdir(parents=True, exist_ok=True)
    missing = missing_plotting()
    if missing:
        results["plots_skipped"] = missing
    (out / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    (out / "results.md").write_text(markdown(results))
    return [out / "results.json", out / "results.md", *([] if missing else plots(results, out))]
