"""The edge's allocator setting (`mirror.allocator`): freed MiB pieces give their pages back to the next ones."""

import os
import subprocess
import sys
import textwrap

# A process that receives bytes in MiB pieces, several alive at once: four 1 MiB pieces made and freed 100 times.
PIECES = textwrap.dedent("""
    import resource, sys
    from mirror import allocator
    tuned = allocator.tune()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        pieces = [bytes(1 << 20) for _ in range(4)]
        del pieces
    print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")
PAGES_OF_FOUR_PIECES = 4 * (1 << 20) // 4096


def _run_pieces(**environ: str) -> tuple[str, int]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")} | environ
    done = subprocess.run([sys.executable, "-c", PIECES], capture_output=True, text=True, check=True, env=env,
                          timeout=60)
    tuned, faults = done.stdout.split()
    return tuned, int(faults)


def test_a_tuned_process_faults_in_its_pieces_pages_once_not_on_every_piece():
    tuned, faults = _run_pieces()
    assert tuned == "True"
    assert faults < 2 * PAGES_OF_FOUR_PIECES, f"{faults} page faults for 100 rounds of four 1 MiB pieces"


def test_an_operators_own_malloc_thresholds_are_left_as_they_are():
    tuned, _ = _run_pieces(MALLOC_TRIM_THRESHOLD_="131072")
    assert tuned == "False"
