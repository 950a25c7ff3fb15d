"""The sweep scenario's pure parts: the growth figures it derives from its points, and how the report shows them."""

from __future__ import annotations

import math
from pathlib import Path

from load import report
from load.scenarios_sweep import exponent, slope


def test_exponent_of_linear_growth_is_one() -> None:
    assert math.isclose(exponent([16, 64, 256, 1024], [0.5, 2.0, 8.0, 32.0]), 1.0)


def test_exponent_of_flat_cost_is_zero() -> None:
    assert math.isclose(exponent([1, 4, 16, 64], [3.0, 3.0, 3.0, 3.0]), 0.0, abs_tol=1e-12)


def test_exponent_of_square_root_growth_is_one_half() -> None:
    assert math.isclose(exponent([1, 4, 16], [1.0, 2.0, 4.0]), 0.5)


def test_exponent_needs_two_distinct_points() -> None:
    assert math.isnan(exponent([8], [1.0]))


def test_slope_is_cost_per_unit_of_work() -> None:
    assert math.isclose(slope([1, 2, 4, 8, 16], [90.0, 95.0, 105.0, 125.0, 165.0]), 5.0)


def _results() -> dict:
    return {"mode": "quick", "started": "20260101T000000Z", "link": {}, "sweep": {
        "layer_size": {"points": [
            {"label": "2MiB", "layer_bytes": 2 << 20, "edge_seconds": 0.5, "registry_direct_seconds": 1.5, "speedup_vs_registry_direct": 3.0},
            {"label": "2048MiB", "layer_bytes": 2 << 30, "edge_seconds": 9.0}]},
        "layers": {"layer_bytes": 1 << 20, "points": [{"layers": 1, "edge_seconds": 0.4}, {"layers": 16, "edge_seconds": 1.6}]},
        "herd": {"image_bytes": 5 << 20, "points": [{"pulls": 1, "p50_seconds": 1.0, "p99_seconds": 1.0, "backend_bytes_ratio": 1.0},
                                                    {"pulls": 256, "p50_seconds": 2.0, "p99_seconds": 4.5, "backend_bytes_ratio": 1.01}]},
        "fills": {"blob_bytes": 1 << 20, "peak_rss_mib": 130.0,
                  "points": [{"fills": 1, "peak_rss_mib": 90.0, "baseline_rss_mib": 82.0, "seconds": 0.3},
                             {"fills": 16, "peak_rss_mib": 130.0, "baseline_rss_mib": 82.0, "seconds": 1.2}]},
    }}


def test_markdown_has_a_row_per_sweep_point_with_registry_direct_left_blank_where_it_did_not_run() -> None:
    text = report.markdown(_results())
    assert "| 2MiB | 0.5 | 1.5 | 3 |" in text
    assert "| 2048MiB | 9 | — | — |" in text
    assert "| 256 | 2 | 4.5 | 1.01 |" in text
    assert "| `sweep.fills.peak_rss_mib` | 130 | ≤ 200 | yes |" in text


def test_plots_write_one_sweep_png(tmp_path: Path) -> None:
    written = report.plots(_results(), tmp_path)
    assert written == [tmp_path / "sweep.png"]
    assert (tmp_path / "sweep.png").read_bytes().startswith(b"\x89PNG")


def test_a_failed_comparator_point_is_shown_with_its_reason() -> None:
    results = _results()
    point = results["sweep"]["layer_size"]["points"][1]
    point["registry_direct_error"] = "ClientConnectorError: refused (registry:2 exited with 2; log: bind: address in use)"
    text = report.markdown(results)
    assert "| 2048MiB | 9 | — | — |" in text
    assert "- label 2048MiB: registry:2 direct failed: ClientConnectorError: refused (registry:2 exited with 2" in text
