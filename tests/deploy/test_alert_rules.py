"""The chart's alert rules, as its PrometheusRule renders them, checked and unit-tested by Debian's real `promtool`:
every alert fires on series shaped like a real edge's (counters present at 0 from start, then rising; a target
down or gone) and stays quiet before."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.conftest import find, render

UNIT_TESTS = Path(__file__).with_name("alerts.test.yaml")


def rendered_rules() -> dict[str, Any]:
    """The PrometheusRule's spec for release "edge" in namespace "edge-mirror" (what alerts.test.yaml names)."""
    objects = render({"metrics": {"prometheusRule": {"enabled": True}}})
    return find(objects, "PrometheusRule", "edge-edge-mirror")["spec"]


def promtool(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rendered_rules(), sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return subprocess.run(["promtool", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rendered_rules(tmp_path):
    checked = promtool(tmp_path, "check", "rules", "rules.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_as_promtool_unit_tests_expect(tmp_path):
    tested = promtool(tmp_path, "test", "rules", UNIT_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_rendered_rules_name_the_release_s_job_and_daemonset():
    text = yaml.safe_dump(rendered_rules())
    assert "__FULLNAME__" not in text and "__NAMESPACE__" not in text
    assert 'daemonset="edge-edge-mirror", namespace="edge-mirror"' in text


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    alerts = {rule["alert"] for group in rendered_rules()["groups"] for rule in group["rules"] if "alert" in rule}
    cases = [case for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert alerts - firing == set()
    assert alerts - quiet == set()
