"""The requests an oracle sequence is made of: plain requests, requests to an upload session (the latest Location
each server gave), and the client-side pushes (monolithic with its fallback)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.oracle import Context, Step, digest_of, remember_upload, with_query

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
EMPTY_JSON = b"{}"
ACCEPTS = [None, OCI_MANIFEST, DOCKER_MANIFEST, f"{OCI_MANIFEST}, {DOCKER_MANIFEST}, {OCI_INDEX}, {DOCKER_LIST}", "*/*"]
OCTETS = {"Content-Type": "application/octet-stream"}


def plain(kind: str, text: str, method: str, path: str, **options: Any) -> Step:
    def send(client: httpx.Client, ctx: Context) -> httpx.Response:
        request = client.build_request(method, path, **options)
        if "accept" not in {key.lower() for key in dict(options.get("headers") or {})}:
            del request.headers["accept"]  # httpx's default `Accept: */*` would be a choice the step did not make
        return client.send(request)

    params = tuple(sorted((key, value) for key, value in options.items() if key == "headers"))
    return Step(kind, text, send, (("method", method), ("path", path), *((k, repr(v)) for k, v in params)))


def in_session(kind: str, text: str, label: str, method: str, query: str = "", **options: Any) -> Step:
    """A request to the upload `label`'s latest Location (skipped where no upload was started)."""

    def send(client: httpx.Client, ctx: Context) -> httpx.Response | None:
        if label not in ctx.uploads:
            return None
        response = client.request(method, with_query(ctx.uploads[label], query) if query else ctx.uploads[label], **options)
        remember_upload(ctx, label, response)
        return response

    return Step(kind, text, send, (("method", method),))


def elsewhere(kind: str, label: str, repo: str, other: str, method: str, query: str = "", **options: Any) -> Step:
    """A request to upload `label` of `repo` through the same URL under another repository's name."""

    def send(client: httpx.Client, ctx: Context) -> httpx.Response | None:
        if label not in ctx.uploads:
            return None
        url = ctx.uploads[label].replace(f"/v2/{repo}/", f"/v2/{other}/", 1)
        return client.request(method, with_query(url, query) if query else url, **options)

    return Step(kind, f"{method} {label} under {other}{'?' + query[:26] + '…' if query else ''}", send, (("method", method),))


def start_upload(repo: str, label: str) -> Step:
    def send(client: httpx.Client, ctx: Context) -> httpx.Response:
        response = client.post(f"/v2/{repo}/blobs/uploads/")
        remember_upload(ctx, label, response)
        return response

    return Step("start_upload", f"POST /v2/{repo}/blobs/uploads/ -> {label}", send)


def patch_chunk(label: str, data: bytes, start: int | None, kind: str = "patch") -> Step:
    headers = dict(OCTETS)
    if start is not None and data:
        headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
    text = f"PATCH {label} {headers.get('Content-Range', 'streamed')} ({len(data)} bytes)"
    return in_session(kind, text, label, "PATCH", content=data, headers=headers)


def finish_upload(label: str, digest: str, data: bytes = b"", kind: str = "finish_upload") -> Step:
    return in_session(kind, f"PUT {label}?digest={digest[:19]}… ({len(data)} bytes)", label, "PUT",
                    f"digest={digest}", content=data, headers=OCTETS)


def monolithic(repo: str, blob: bytes, digest: str | None = None) -> Step:
    """The single-POST push a client makes: ``POST ?digest=`` with the body; where the registry answers 202 (the
    spec lets it refuse the single POST, as registry:2 2.8 does), the client PUTs the body to the new session."""
    digest = digest or digest_of(blob)

    def send(client: httpx.Client, ctx: Context) -> httpx.Response:
        response = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=blob, headers=OCTETS)
        if response.status_code != 202:
            return response
        return client.put(with_query(ctx.absolute(response.headers["location"]), f"digest={digest}"), content=blob, headers=OCTETS)

    return Step("monolithic", f"POST /v2/{repo}/blobs/uploads/?digest={digest[:19]}… ({len(blob)} bytes), PUT the session if 202", send)
