"""Push a tiny one-layer OCI image over plain HTTP with optional headers (e.g. a Bearer token)."""

from __future__ import annotations

import httpx
import orjson

from tests.support.digests import digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def error_code(response: httpx.Response) -> str:
    """The code of the first error of an OCI error body."""
    return str(orjson.loads(response.content)["errors"][0]["code"])


def push_tiny_image(url: str, name: str, tag: str, layer: bytes, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Monolithic blob uploads, then the manifest; returns the digests {"layer", "config", "manifest"}."""
    headers = headers or {}
    config = orjson.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]}})
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for blob in (layer, config):
            response = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest_of(blob)}, content=blob)
            if response.status_code == 202:  # registries that do not take a monolithic POST
                location = response.headers["location"]
                separator = "&" if "?" in location else "?"
                response = client.put(f"{location}{separator}digest={digest_of(blob)}", content=blob)
            response.raise_for_status()
        manifest = orjson.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}],
        })
        client.put(f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}).raise_for_status()
    return {"layer": digest_of(layer), "config": digest_of(config), "manifest": digest_of(manifest)}
