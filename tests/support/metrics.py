"""Scrape a Prometheus ``/metrics`` endpoint and look samples up by name and labels."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# Loopback only: never send the scrape through an HTTP(S)_PROXY from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Metrics(dict[str, list[Sample]]):
    """One scrape: sample name -> samples (counters keep their ``_total`` suffix, histograms their ``_bucket``,
    ``_count`` and ``_sum`` samples)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.setdefault(sample.name, []).append(sample)

    @property
    def samples(self) -> list[Sample]:
        """Every sample of the scrape."""
        return [sample for samples in self.values() for sample in samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include all of `labels`; 0.0 when there are none."""
        return float(
            sum(
                sample.value
                for sample in self.get(name, [])
                if all(sample.labels.get(key) == str(wanted) for key, wanted in labels.items())
            )
        )

    def label_values(self, name: str, label: str) -> set[str]:
        """The values `label` takes among the samples called `name`."""
        return {sample.labels[label] for sample in self.get(name, []) if label in sample.labels}


def parse(text: str) -> Metrics:
    """Parse Prometheus text exposition format."""
    return Metrics(text)


def scrape(url: str, timeout: float = 10) -> Metrics:
    """GET ``url + "/metrics"`` (`url` like ``http://127.0.0.1:PORT``) and parse it."""
    with _OPENER.open(url.rstrip("/") + "/metrics", timeout=timeout) as response:
        if response.status != 200:
            raise RuntimeError(f"GET {url}/metrics answered {response.status}")
        return Metrics(response.read().decode())
