"""results.json, a markdown table against the product's targets, and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

# (key, target, higher is better): the product's goals from the benchmark issue, not CI gates.
TARGETS = [
    ("warm_blob.ratio_vs_nginx", 1.0, True),
    ("warm_blob.ratio_vs_registry_proxy", None, True),
    ("warm_manifest.ratio_vs_registry_proxy", 3.0, True),
    ("cold_pull.speedup_vs_registry_direct", 10.0, True),
    ("cold_pull.speedup_vs_registry_proxy", 10.0, True),
    ("cold_pull.ttfb_excess_ms", 50.0, False),
    ("cold_pull.link_utilisation", 0.8, True),
    ("herd.backend_bytes_ratio", 1.02, False),
    ("herd.p99_over_single", 1.25, False),
    ("memory.peak_rss_mib", 200.0, False),
    ("fleet.egress_ratio_vs_registry_proxy", None, False),
    ("fleet.p99_ratio_vs_registry_proxy", None, False),
]


def lookup(results: dict[str, Any], dotted: str) -> Any:
    value: Any = results
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark results ({results['mode']} run, {results['started']})",
        "",
        "| measure | edge | target | meets |",
        "|---|---|---|---|",
    ]
    for key, target, higher in TARGETS:
        value = lookup(results, key)
        if value is None:
            lines.append(f"| `{key}` | not measured | {target if target is not None else '—'} | — |")
            continue
        meets = "—" if target is None else ("yes" if (value >= target if higher else value <= target) else "no")
        bound = "—" if target is None else f"{'≥' if higher else '≤'} {target:g}"
        lines.append(f"| `{key}` | {value:.3g} | {bound} | {meets} |")
    lines += ["", f"Link: {results['link']}", ""]
    return "\n".join(lines)


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(15, 8))
    written = out / "results.png"

    def ok(name: str) -> bool:
        return name in results and "error" not in results[name]

    def bars(axis, title: str, values: dict[str, float], unit: str) -> None:  # type: ignore[no-untyped-def]
        names = list(values)
        axis.bar(names, [values[name] for name in names], color=["#2b8cbe" if name == "edge" else "#bbbbbb" for name in names])
        axis.set_title(title)
        axis.set_ylabel(unit)
        for index, name in enumerate(names):
            axis.annotate(f"{values[name]:.3g}", (index, values[name]), ha="center", va="bottom")

    if ok("warm_blob"):
        bars(axes[0][0], "warm blob (higher is better)", {k: v / 1e9 for k, v in results["warm_blob"]["bytes_per_second"].items()}, "GB/s")
    if ok("warm_manifest"):
        bars(axes[0][1], "warm manifest by tag (higher is better)",
             {k: v["get_by_tag"] for k, v in results["warm_manifest"]["requests_per_second"].items()}, "requests/s")
    if ok("cold_pull"):
        bars(axes[0][2], "cold pull (lower is better)", results["cold_pull"]["seconds"], "seconds")
    if ok("herd"):
        herd = results["herd"]
        bars(axes[1][0], f"herd of {herd['pulls']}: backend bytes / image (lower is better)",
             {name: herd[name]["backend_bytes_ratio"] for name in ("edge", "registry_proxy")}, "×")
    if ok("memory"):
        memory = results["memory"]
        bars(axes[1][1], "edge peak RSS (lower is better)",
             {"4 fills": memory["fills_peak_rss_mib"], "push": memory["push_peak_rss_mib"]}, "MiB")
    if ok("fleet"):
        fleet = results["fleet"]
        bars(axes[1][2], "fleet egress (lower is better)",
             {name: fleet[name]["egress_bytes"] / 2**20 for name in ("edge", "registry_proxy")}, "MiB")
    figure.tight_layout()
    figure.savefig(written, dpi=90)
    plt.close(figure)
    return [written]


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (out / "results.md").write_text(markdown(results))
    plots(results, out)
