# The two commands of the README, and the benchmark.
.PHONY: serve test bench bench-quick

serve:
	python3 -m pip install -q --disable-pip-version-check -e .
	edge-mirror serve

test:
	bash scripts/install-test-deps.sh
	python3 -m pytest -q

bench:
	python3 -m load --out load/results/latest

bench-quick:
	python3 -m load --quick --out load/results/quick
