"""The cost scenario's floor: a process that only receives, hashes, writes and sends the bytes, measured per step;
and the same bytes as a request body through the edge's own HTTP server."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from load import floor

SIZE = 8 * 1024 * 1024 + 4096  # not a whole number of chunks


def test_the_floor_moves_every_byte_and_hashes_what_it_received(tmp_path: Path) -> None:
    measured = floor.measure(tmp_path, SIZE)
    sent = (floor.pattern(floor.CHUNK) * (SIZE // floor.CHUNK + 1))[:SIZE]
    assert measured["sha256"] == hashlib.sha256(sent).hexdigest()
    assert list(tmp_path.iterdir()) == []  # its file is gone


def test_the_cold_floor_is_the_sum_of_its_steps_and_a_signed_push_hashes_twice(tmp_path: Path) -> None:
    measured = floor.measure(tmp_path, SIZE)
    steps = measured["steps_cpu_seconds_per_gib"]
    assert isinstance(steps, dict) and set(steps) == {"recv", "sha256", "write", "sendfile", "tls_send"}
    assert steps["sha256"] > 0 and steps["write"] > 0  # each step is timed, none left out
    assert measured["cold"] == steps["recv"] + steps["sha256"] + steps["write"] + steps["sendfile"]
    assert measured["warm"] == steps["sendfile"]
    assert measured["push_signed"] == measured["cold"] + steps["sha256"]


def test_a_push_through_the_server_costs_its_signed_floor_with_the_receive_taken_through_the_stack(tmp_path: Path) -> None:
    measured = floor.measure(tmp_path, SIZE)
    stack = measured["stack_cpu_seconds_per_gib"]
    assert len(measured["stack_samples"]) == measured["rounds"]  # every body reached the app whole (else it raises)
    assert stack > 0
    recv = measured["steps_cpu_seconds_per_gib"]["recv"]
    assert measured["push_stack"] == measured["push_signed"] - recv + stack


def test_the_floor_runs_as_a_module_and_prints_json(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "load.floor", str(tmp_path), str(SIZE)], capture_output=True, text=True,
                          timeout=120, check=True, cwd=Path(__file__).resolve().parents[2])
    assert json.loads(done.stdout)["bytes"] == SIZE


def test_a_push_to_an_https_bucket_hashes_once_and_sends_its_parts_encrypted(tmp_path: Path) -> None:
    measured = floor.measure(tmp_path, SIZE)
    steps = measured["steps_cpu_seconds_per_gib"]
    assert steps["tls_send"] > steps["sendfile"]  # every byte encrypted and copied out, none sent by the kernel alone
    assert measured["push_tls"] == steps["recv"] + steps["sha256"] + steps["write"] + steps["tls_send"]
    assert measured["push_tls_stack"] == measured["push_tls"] - steps["recv"] + measured["stack_cpu_seconds_per_gib"]
    assert list(tmp_path.iterdir()) == []  # its certificate and key are gone with its file


def test_a_push_after_the_first_has_its_floors_with_the_spool_written_over_cached_pages(tmp_path: Path) -> None:
    measured = floor.measure(tmp_path, SIZE)
    write, rewrite = measured["steps_cpu_seconds_per_gib"]["write"], measured["rewrite_cpu_seconds_per_gib"]
    assert measured["push_stack_rewrite"] == measured["push_stack"] - write + rewrite
    assert measured["push_tls_stack_rewrite"] == measured["push_tls_stack"] - write + rewrite

