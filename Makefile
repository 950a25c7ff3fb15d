# The two commands of the README, the fast tier for development, and the benchmark.
.PHONY: serve test test-fast bench bench-quick image-multiarch

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

# The chart's image for every architecture the chart schedules on (values.yaml image.architectures), pushed as
# one multi-arch manifest list: make image-multiarch IMAGE=registry.example.com/edge-mirror:0.1.0
IMAGE ?= edge-mirror:dev
PLATFORMS ?= linux/amd64,linux/arm64
image-multiarch:
	docker buildx build --platform $(PLATFORMS) -f deploy/Dockerfile -t $(IMAGE) --push .
