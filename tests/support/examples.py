"""The client and registry configs shipped in ``deploy/examples/``, templated for a test's loopback ports.

The examples name the node's edge ``192.0.2.10:5000`` and the central registry ``registry.example.com``; a test
swaps those for its own edge and registry, and changes nothing else, so what the e2e tests prove is what the
examples say.
"""

from __future__ import annotations

from pathlib import Path

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
EXAMPLE_EDGE = "192.0.2.10:5000"
EXAMPLE_REGISTRY = "registry.example.com"


def text(name: str, edge_host: str, registry_host: str = EXAMPLE_REGISTRY) -> str:
    """``deploy/examples/<name>`` with the example edge and registry replaced by `edge_host` and `registry_host`."""
    return (EXAMPLES / name).read_text().replace(EXAMPLE_EDGE, edge_host).replace(EXAMPLE_REGISTRY, registry_host)


def registry_storage(endpoint: str, bucket: str) -> dict:
    """The ``storage`` section of the Storj registry:2 example, aimed at a loopback S3 server.

    Only where the bucket is and its credentials change (and upload purging stays off in tests); chunk sizes,
    redirects and delete are the example's own.
    """
    storage = yaml.safe_load((EXAMPLES / "registry-config.yml").read_text())["storage"]
    storage.pop("maintenance", None)
    storage["s3"].update(regionendpoint=endpoint, bucket=bucket, accesskey="x", secretkey="y", secure=False)
    return storage
