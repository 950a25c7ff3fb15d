# The two commands of the README, the fast tier for development, and the benchmark.
.PHONY: serve test test-fast bench bench-quick

serve:
	python3 -m pip install -q --disable-pip-version-check -e .
	edge-mirror serve

test:
	bash scripts/install-test-deps.sh
	python3 -m pytest -q

# Unit and in-process tests only (tests/unit, tests/properties): no package installs, no server process started.
test-fast:
	python3 -m pytest -q -p no:cacheprovider --fast

bench:
	python3 -m load --out load/results/latest

bench-quick:
	python3 -m load --quick --out load/results/quick
