"""Random request sequences for the registry:2 oracle: pushes (monolithic, POST+PUT, chunked, resumed), mounts,
manifests (OCI, Docker, index, artifact with a subject), tags, deletes, listings, reads with Accept and Range
variants, and malformed names, digests and methods. Every sequence works on its own two repository names."""

from __future__ import annotations

import hashlib
import itertools
import random
from typing import Any, Callable

import httpx
import orjson

from tests.support.oracle import Context, Step, digest_of, remember_upload, with_query

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
EMPTY_JSON = b"{}"
ACCEPTS = [None, OCI_MANIFEST, DOCKER_MANIFEST, f"{OCI_MANIFEST}, {DOCKER_MANIFEST}, {OCI_INDEX}, {DOCKER_LIST}", "*/*"]
OCTETS = {"Content-Type": "application/octet-stream"}


def _request(kind: str, text: str, method: str, path: str, **options: Any) -> Step:
    def send(client: httpx.Client, ctx: Context) -> httpx.Response:
        request = client.build_request(method, path, **options)
        if "accept" not in {key.lower() for key in dict(options.get("headers") or {})}:
            del request.headers["accept"]  # httpx's default `Accept: */*` would be a choice the step did not make
        return client.send(request)

    params = tuple(sorted((key, value) for key, value in options.items() if key == "headers"))
    return Step(kind, text, send, (("method", method), ("path", path), *((k, repr(v)) for k, v in params)))


def _session(kind: str, text: str, label: str, method: str, query: str = "", **options: Any) -> Step:
    """A request to the upload `label`'s latest Location (skipped where no upload was started)."""

    def send(client: httpx.Client, ctx: Context) -> httpx.Response | None:
        if label not in ctx.uploads:
            return None
        response = client.request(method, with_query(ctx.uploads[label], query) if query else ctx.uploads[label], **options)
        remember_upload(ctx, label, response)
        return response

    return Step(kind, text, send, (("method", method),))


def _elsewhere(kind: str, label: str, repo: str, other: str, method: str, query: str = "", **options: Any) -> Step:
    """A request to upload `label` of `repo` through the same URL under another repository's name."""

    def send(client: httpx.Client, ctx: Context) -> httpx.Response | None:
        if label not in ctx.uploads:
            return None
        url = ctx.uploads[label].replace(f"/v2/{repo}/", f"/v2/{other}/", 1)
        return client.request(method, with_query(url, query) if query else url, **options)

    return Step(kind, f"{method} {label} under {other}{'?' + query[:26] + '…' if query else ''}", send, (("method", method),))


def _start(repo: str, label: str) -> Step:
    def send(client: httpx.Client, ctx: Context) -> httpx.Response:
        response = client.post(f"/v2/{repo}/blobs/uploads/")
        remember_upload(ctx, label, response)
        return response

    return Step("start_upload", f"POST /v2/{repo}/blobs/uploads/ -> {label}", send)


def _patch(label: str, data: bytes, start: int | None, kind: str = "patch") -> Step:
    headers = dict(OCTETS)
    if start is not None and data:
        headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
    text = f"PATCH {label} {headers.get('Content-Range', 'streamed')} ({len(data)} bytes)"
    return _session(kind, text, label, "PATCH", content=data, headers=headers)


def _finish(label: str, digest: str, data: bytes = b"", kind: str = "finish_upload") -> Step:
    return _session(kind, f"PUT {label}?digest={digest[:19]}… ({len(data)} bytes)", label, "PUT",
                    f"digest={digest}", content=data, headers=OCTETS)


def _monolithic(repo: str, blob: bytes, digest: str | None = None) -> Step:
    """The single-POST push a client makes: ``POST ?digest=`` with the body; where the registry answers 202 (the
    spec lets it refuse the single POST, as registry:2 2.8 does), the client PUTs the body to the new session."""
    digest = digest or digest_of(blob)

    def send(client: httpx.Client, ctx: Context) -> httpx.Response:
        response = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=blob, headers=OCTETS)
        if response.status_code != 202:
            return response
        return client.put(with_query(ctx.absolute(response.headers["location"]), f"digest={digest}"), content=blob, headers=OCTETS)

    return Step("monolithic", f"POST /v2/{repo}/blobs/uploads/?digest={digest[:19]}… ({len(blob)} bytes), PUT the session if 202", send)


def _halves(data: bytes, rng: random.Random) -> tuple[bytes, bytes]:
    cut = rng.randint(1, len(data) - 1) if len(data) > 1 else len(data)
    return data[:cut], data[cut:]


class Generator:
    """Builds sequences from one `random.Random`: the same seed gives the same requests."""

    def __init__(self, seed: int, prefix: str) -> None:
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.labels = itertools.count()

    def sequence(self, index: int) -> list[Step]:
        rng = self.rng
        self.repos = [f"{self.prefix}/s{index}/app", f"{self.prefix}/s{index}/other"]
        self.blobs = [rng.randbytes(rng.choice([0, 1, 7, 100, 4096, 20_000])) for _ in range(3)] + [EMPTY_JSON]
        self.config = orjson.dumps({"architecture": "amd64", "os": "linux", "seed": rng.random()})
        self.blobs.append(self.config)
        self.tags = ["latest", "v1", "v1.1", "Z", "a-b_c.d"][: rng.randint(1, 5)]
        self.manifests = self._manifests()
        steps: list[Step] = []
        for _ in range(rng.randint(2, 6)):
            steps += self._push(rng.choice(self.repos[:1] * 3 + self.repos[1:]), rng.choice(self.blobs))
        for _ in range(rng.randint(1, 3)):
            steps += self._put_manifest()
        for _ in range(rng.randint(6, 14)):
            steps += rng.choice(self._anything())()
        return steps

    # -- content ------------------------------------------------------------------------------------------------
    def _manifests(self) -> list[tuple[str, bytes]]:
        rng = self.rng
        layers = rng.sample(self.blobs[:3], rng.randint(1, 3))
        def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
            return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}
        oci = orjson.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": descriptor("application/vnd.oci.image.config.v1+json", self.config),
                            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer) for layer in layers]})
        docker = orjson.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                               "config": descriptor("application/vnd.docker.container.image.v1+json", self.config),
                               "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", layers[0])]})
        platform = [{"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
        index = orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {**descriptor(OCI_MANIFEST, oci), "platform": platform[0]},
            {**descriptor(DOCKER_MANIFEST, docker), "platform": platform[1]}]})
        artifact = orjson.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-oracle",
                                 "config": descriptor("application/vnd.oci.empty.v1+json", EMPTY_JSON),
                                 "layers": [descriptor("application/x-oracle-note", self.blobs[0])],
                                 "subject": descriptor(OCI_MANIFEST, oci)})
        return [(OCI_MANIFEST, oci), (DOCKER_MANIFEST, docker), (OCI_INDEX, index), (OCI_MANIFEST, artifact)]

    def _label(self) -> str:
        return f"upload{next(self.labels)}"

    # -- pushes -------------------------------------------------------------------------------------------------
    def _push(self, repo: str, blob: bytes) -> list[Step]:
        rng, digest, label = self.rng, digest_of(blob), self._label()
        how = rng.choice(["monolithic", "post_put", "chunked", "resumed", "last_in_put", "mount"])
        if how == "monolithic":
            return [_monolithic(repo, blob)]
        if how == "mount":
            source = self.repos[1] if repo == self.repos[0] else self.repos[0]
            return [_request("mount", f"POST /v2/{repo}/blobs/uploads/?mount=…&from={source}", "POST",
                             f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})]
        steps = [_start(repo, label)]
        if how == "post_put":
            return steps + [_finish(label, digest, blob)]
        first, rest = _halves(blob, rng)
        if how == "last_in_put":
            return steps + [_patch(label, first, 0), _finish(label, digest, rest)]
        if how == "resumed":
            steps += [_patch(label, first, 0), _session("upload_status", f"GET {label}", label, "GET")]
            return steps + [_patch(label, rest, len(first)) if rest else _session("upload_status", f"HEAD {label}", label, "HEAD"),
                            _finish(label, digest)]
        return steps + [_patch(label, first, 0 if rng.random() < 0.7 else None)] + (
            [_patch(label, rest, len(first))] if rest else []) + [_finish(label, digest)]

    def _push_wrong(self) -> list[Step]:
        rng, label, repo = self.rng, self._label(), self.rng.choice(self.repos)
        blob = rng.choice(self.blobs)
        steps = [_start(repo, label)]
        choice = rng.choice(["digest", "malformed", "missing", "out_of_order", "cancel", "status_after_cancel"])
        if choice == "digest":
            return steps + [_finish(label, digest_of(blob + b"x"), blob)]
        if choice == "malformed":
            return steps + [_finish(label, rng.choice(["sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64]), blob)]
        if choice == "missing":
            return steps + [_session("finish_upload", f"PUT {label} without ?digest", label, "PUT", content=blob, headers=OCTETS)]
        if choice == "out_of_order":
            return steps + [_patch(label, b"abcdef", 0), _patch(label, b"ghij", 10, kind="patch_out_of_order")]
        steps += [_session("cancel_upload", f"DELETE {label}", label, "DELETE")]
        return steps + ([_session("upload_status", f"GET {label} after cancel", label, "GET")] if choice == "status_after_cancel" else [])

    def _push_odd(self) -> list[Step]:
        """Pushes at the edges of the protocol: a finished or foreign session, other digests, mounts without `from`."""
        rng, label = self.rng, self._label()
        repo, other = rng.sample(self.repos, 2)
        blob = rng.choice(self.blobs[:3])
        choice = rng.choice(["after_finish", "cross_repo", "sha512", "monolithic_wrong", "mount_without_from"])
        if choice == "after_finish":
            return [_start(repo, label), _finish(label, digest_of(blob), blob),
                    _session("upload_status", f"GET {label} after it finished", label, "GET"),
                    _patch(label, b"late", None, kind="patch_finished")]
        if choice == "cross_repo":
            return [_start(repo, label), _patch(label, blob, 0),
                    _elsewhere("cross_repo_upload", label, repo, other, "GET"),
                    _elsewhere("cross_repo_upload", label, repo, other, "PUT", f"digest={digest_of(blob)}", headers=OCTETS),
                    _request("head_blob", f"HEAD /v2/{other}/blobs/{digest_of(blob)[:19]}…", "HEAD", f"/v2/{other}/blobs/{digest_of(blob)}")]
        if choice == "sha512":
            sha512 = "sha512:" + hashlib.sha512(blob).hexdigest()
            return [_start(repo, label), _finish(label, sha512, blob, kind="finish_sha512")]
        if choice == "monolithic_wrong":
            return [_monolithic(repo, blob, digest_of(blob + b"!"))]
        return [_request("mount", f"POST /v2/{repo}/blobs/uploads/?mount=… (no from)", "POST",
                         f"/v2/{repo}/blobs/uploads/", params={"mount": digest_of(blob)})]

    def _put_manifest_odd(self) -> list[Step]:
        rng, repo = self.rng, self.rng.choice(self.repos)
        (media_type, body), (_, other) = rng.sample(self.manifests, 2)
        if rng.random() < 0.8:
            return [_request("put_manifest", f"PUT /v2/{repo}/manifests/<digest of another manifest>", "PUT",
                             f"/v2/{repo}/manifests/{digest_of(other)}", content=body, headers={"Content-Type": media_type})]
        big = orjson.dumps({**orjson.loads(body), "annotations": {"padding": "x" * (4 * 1024 * 1024)}})
        return [_request("put_manifest_big", f"PUT /v2/{repo}/manifests/big ({len(big)} bytes)", "PUT",
                         f"/v2/{repo}/manifests/big", content=big, headers={"Content-Type": media_type})]

    # -- manifests and reads ------------------------------------------------------------------------------------
    def _reference(self, media_type_body: tuple[str, bytes] | None = None) -> str:
        _, body = media_type_body or self.rng.choice(self.manifests)
        return self.rng.choice(self.tags) if self.rng.random() < 0.5 else digest_of(body)

    def _put_manifest(self) -> list[Step]:
        rng = self.rng
        repo, (media_type, body) = rng.choice(self.repos), rng.choice(self.manifests)
        reference = rng.choice(self.tags) if rng.random() < 0.7 else digest_of(body)
        content_type = media_type if rng.random() < 0.95 else "application/json"
        kind = "put_manifest" if content_type == media_type else "put_manifest_json"
        return [_request(kind, f"PUT /v2/{repo}/manifests/{reference} ({content_type}, {digest_of(body)[:19]}…)",
                         "PUT", f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": content_type})]

    def _read_manifest(self) -> list[Step]:
        repo, reference, accept = self.rng.choice(self.repos), self._reference(), self.rng.choice(ACCEPTS)
        method = self.rng.choice(["GET", "HEAD"])
        headers: Any = {"Accept": accept} if accept else {}
        if self.rng.random() < 0.15:  # one Accept header per type, as containerd and docker send them
            headers = [("Accept", OCI_INDEX), ("Accept", self.rng.choice([OCI_MANIFEST, DOCKER_MANIFEST]))]
            accept = " | ".join(value for _, value in headers)
        return [_request(f"{method.lower()}_manifest", f"{method} /v2/{repo}/manifests/{reference} Accept: {accept}",
                         method, f"/v2/{repo}/manifests/{reference}", headers=headers)]

    def _read_blob(self) -> list[Step]:
        rng = self.rng
        repo, blob, method = rng.choice(self.repos), rng.choice(self.blobs), rng.choice(["GET", "HEAD"])
        ranges = [None, None, "bytes=0-0", "bytes=1-", "bytes=0-3", f"bytes=2-{len(blob) + 5}", "bytes=-2", f"bytes={len(blob) + 10}-"]
        wanted = rng.choice(ranges)
        headers = {"Range": wanted} if wanted else {}
        return [_request(f"{method.lower()}_blob", f"{method} /v2/{repo}/blobs/{digest_of(blob)[:19]}… Range: {wanted} (size {len(blob)})",
                         method, f"/v2/{repo}/blobs/{digest_of(blob)}", headers=headers)]

    def _delete(self) -> list[Step]:
        rng, repo = self.rng, self.rng.choice(self.repos)
        if rng.random() < 0.6:
            reference = self._reference()
            return [_request("delete_manifest", f"DELETE /v2/{repo}/manifests/{reference}", "DELETE", f"/v2/{repo}/manifests/{reference}")]
        digest = digest_of(rng.choice(self.blobs))
        return [_request("delete_blob", f"DELETE /v2/{repo}/blobs/{digest}", "DELETE", f"/v2/{repo}/blobs/{digest}")]

    def _tags(self) -> list[Step]:
        rng, repo = self.rng, self.rng.choice(self.repos)
        query = rng.choice(["", "", "n=2", "n=1", "n=0", f"last={rng.choice(self.tags)}", f"n=1&last={rng.choice(self.tags)}", "n=-1", "n=x"])
        return [_request("tags_paged" if query else "tags", f"GET /v2/{repo}/tags/list?{query}", "GET",
                         f"/v2/{repo}/tags/list" + (f"?{query}" if query else ""))]

    def _referrers(self) -> list[Step]:
        repo, digest = self.rng.choice(self.repos), digest_of(self.manifests[0][1])
        return [_request("referrers", f"GET /v2/{repo}/referrers/{digest}", "GET", f"/v2/{repo}/referrers/{digest}")]

    def _malformed(self) -> list[Step]:
        rng, repo = self.rng, self.rng.choice(self.repos)
        digest = digest_of(self.blobs[0])
        cases = [
            ("bad_name", "GET", "/v2/UPPER/case/manifests/latest"), ("bad_name", "GET", "/v2/a//b/tags/list"),
            ("bad_name", "POST", "/v2/-lead/blobs/uploads/"), ("bad_name", "HEAD", f"/v2/x__y/blobs/{digest}"),
            ("bad_digest", "GET", f"/v2/{repo}/blobs/sha256:abc"), ("bad_digest", "HEAD", f"/v2/{repo}/blobs/sha256:{'g' * 64}"),
            ("bad_digest", "DELETE", f"/v2/{repo}/blobs/nodigest"), ("bad_digest", "GET", f"/v2/{repo}/manifests/sha256:{'0' * 63}"),
            ("bad_reference", "GET", f"/v2/{repo}/manifests/-tag"), ("bad_reference", "PUT", f"/v2/{repo}/manifests/{'t' * 129}"),
            ("bad_method", "PATCH", f"/v2/{repo}/manifests/latest"), ("bad_method", "POST", f"/v2/{repo}/tags/list"),
            ("bad_method", "PUT", f"/v2/{repo}/blobs/{digest}"), ("bad_method", "DELETE", "/v2/"),
            ("unknown_upload", "GET", f"/v2/{repo}/blobs/uploads/00000000-0000-0000-0000-000000000000"),
            ("unknown_upload", "PATCH", f"/v2/{repo}/blobs/uploads/not-an-upload"),
            ("bad_manifest", "PUT", f"/v2/{repo}/manifests/broken"),
            ("mount_unknown", "POST", f"/v2/{repo}/blobs/uploads/?mount={digest}&from=nowhere/repo"),
        ]
        kind, method, path = rng.choice(cases)
        body = {"content": b"{not json", "headers": {"Content-Type": OCI_MANIFEST}} if method in ("PUT", "PATCH") else {}
        return [_request(kind, f"{method} {path}", method, path, **body)]

    def _anything(self) -> list[Callable[[], list[Step]]]:
        push = lambda: self._push(self.rng.choice(self.repos), self.rng.choice(self.blobs))  # noqa: E731
        return [push, push, self._push_wrong, self._push_odd, self._put_manifest_odd, self._put_manifest, self._put_manifest, self._read_manifest,
                self._read_manifest, self._read_manifest, self._read_blob, self._read_blob, self._delete, self._delete,
                self._tags, self._tags, self._referrers, self._malformed, self._malformed]


def final_reads(generator: Generator) -> list[Step]:
    """What a second edge with an empty cache, reading registry:2's storage, must answer as registry:2 does."""
    steps: list[Step] = []
    accept = ACCEPTS[3]
    for repo in generator.repos:
        steps.append(_request("tags", f"GET /v2/{repo}/tags/list", "GET", f"/v2/{repo}/tags/list"))
        references = list(generator.tags) + [digest_of(body) for _, body in generator.manifests]
        steps += [_request("get_manifest", f"GET /v2/{repo}/manifests/{reference} Accept: {accept}", "GET",
                           f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept}) for reference in references]
        steps += [_request("get_blob", f"GET /v2/{repo}/blobs/{digest_of(blob)}", "GET", f"/v2/{repo}/blobs/{digest_of(blob)}")
                  for blob in generator.blobs]
    return steps
