"""Random request sequences for the registry:2 oracle: pushes (monolithic, POST+PUT, chunked, resumed), mounts,
manifests (OCI, Docker, index, artifact with a subject), tags, deletes, listings, reads with Accept and Range
variants, and malformed names, digests and methods. Every sequence works on its own two repository names."""

from __future__ import annotations

import hashlib
import itertools
import random
from typing import Any, Callable

import orjson

from tests.support.oracle import Step, digest_of
from tests.support.oracle_steps import (
    ACCEPTS, DOCKER_MANIFEST, EMPTY_JSON, OCI_INDEX, OCI_MANIFEST, OCTETS, elsewhere, finish_upload, monolithic, patch_chunk,
    plain, in_session, start_upload,
)


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
            return [monolithic(repo, blob)]
        if how == "mount":
            source = self.repos[1] if repo == self.repos[0] else self.repos[0]
            return [plain("mount", f"POST /v2/{repo}/blobs/uploads/?mount=…&from={source}", "POST",
                             f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})]
        steps = [start_upload(repo, label)]
        if how == "post_put":
            return steps + [finish_upload(label, digest, blob)]
        first, rest = _halves(blob, rng)
        if how == "last_in_put":
            return steps + [patch_chunk(label, first, 0), finish_upload(label, digest, rest)]
        if how == "resumed":
            steps += [patch_chunk(label, first, 0), in_session("upload_status", f"GET {label}", label, "GET")]
            return steps + [patch_chunk(label, rest, len(first)) if rest else in_session("upload_status", f"HEAD {label}", label, "HEAD"),
                            finish_upload(label, digest)]
        return steps + [patch_chunk(label, first, 0 if rng.random() < 0.7 else None)] + (
            [patch_chunk(label, rest, len(first))] if rest else []) + [finish_upload(label, digest)]

    def _push_wrong(self) -> list[Step]:
        rng, label, repo = self.rng, self._label(), self.rng.choice(self.repos)
        blob = rng.choice(self.blobs)
        steps = [start_upload(repo, label)]
        choice = rng.choice(["digest", "malformed", "missing", "out_of_order", "cancel", "status_after_cancel"])
        if choice == "digest":
            return steps + [finish_upload(label, digest_of(blob + b"x"), blob)]
        if choice == "malformed":
            return steps + [finish_upload(label, rng.choice(["sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64]), blob)]
        if choice == "missing":
            return steps + [in_session("finish_upload", f"PUT {label} without ?digest", label, "PUT", content=blob, headers=OCTETS)]
        if choice == "out_of_order":
            return steps + [patch_chunk(label, b"abcdef", 0), patch_chunk(label, b"ghij", 10, kind="patch_out_of_order")]
        steps += [in_session("cancel_upload", f"DELETE {label}", label, "DELETE")]
        return steps + ([in_session("upload_status", f"GET {label} after cancel", label, "GET")] if choice == "status_after_cancel" else [])

    def _push_odd(self) -> list[Step]:
        """Pushes at the edges of the protocol: a finished or foreign session, other digests, mounts without `from`."""
        rng, label = self.rng, self._label()
        repo, other = rng.sample(self.repos, 2)
        blob = rng.choice(self.blobs[:3])
        choice = rng.choice(["after_finish", "cross_repo", "sha512", "monolithic_wrong", "mount_without_from"])
        if choice == "after_finish":
            return [start_upload(repo, label), finish_upload(label, digest_of(blob), blob),
                    in_session("upload_status", f"GET {label} after it finished", label, "GET"),
                    patch_chunk(label, b"late", None, kind="patch_finished")]
        if choice == "cross_repo":
            return [start_upload(repo, label), patch_chunk(label, blob, 0),
                    elsewhere("cross_repo_upload", label, repo, other, "GET"),
                    elsewhere("cross_repo_upload", label, repo, other, "PUT", f"digest={digest_of(blob)}", headers=OCTETS),
                    plain("head_blob", f"HEAD /v2/{other}/blobs/{digest_of(blob)[:19]}…", "HEAD", f"/v2/{other}/blobs/{digest_of(blob)}")]
        if choice == "sha512":
            sha512 = "sha512:" + hashlib.sha512(blob).hexdigest()
            return [start_upload(repo, label), finish_upload(label, sha512, blob, kind="finish_sha512")]
        if choice == "monolithic_wrong":
            return [monolithic(repo, blob, digest_of(blob + b"!"))]
        return [plain("mount", f"POST /v2/{repo}/blobs/uploads/?mount=… (no from)", "POST",
                         f"/v2/{repo}/blobs/uploads/", params={"mount": digest_of(blob)})]

    def _put_manifest_odd(self) -> list[Step]:
        rng, repo = self.rng, self.rng.choice(self.repos)
        (media_type, body), (_, other) = rng.sample(self.manifests, 2)
        if rng.random() < 0.8:
            return [plain("put_manifest", f"PUT /v2/{repo}/manifests/<digest of another manifest>", "PUT",
                             f"/v2/{repo}/manifests/{digest_of(other)}", content=body, headers={"Content-Type": media_type})]
        big = orjson.dumps({**orjson.loads(body), "annotations": {"padding": "x" * (4 * 1024 * 1024)}})
        return [plain("put_manifest_big", f"PUT /v2/{repo}/manifests/big ({len(big)} bytes)", "PUT",
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
        return [plain(kind, f"PUT /v2/{repo}/manifests/{reference} ({content_type}, {digest_of(body)[:19]}…)",
                         "PUT", f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": content_type})]

    def _read_manifest(self) -> list[Step]:
        repo, reference, accept = self.rng.choice(self.repos), self._reference(), self.rng.choice(ACCEPTS)
        method = self.rng.choice(["GET", "HEAD"])
        headers: Any = {"Accept": accept} if accept else {}
        if self.rng.random() < 0.15:  # one Accept header per type, as containerd and docker send them
            headers = [("Accept", OCI_INDEX), ("Accept", self.rng.choice([OCI_MANIFEST, DOCKER_MANIFEST]))]
            accept = " | ".join(value for _, value in headers)
        return [plain(f"{method.lower()}_manifest", f"{method} /v2/{repo}/manifests/{reference} Accept: {accept}",
                         method, f"/v2/{repo}/manifests/{reference}", headers=headers)]

    def _read_blob(self) -> list[Step]:
        rng = self.rng
        repo, blob, method = rng.choice(self.repos), rng.choice(self.blobs), rng.choice(["GET", "HEAD"])
        ranges = [None, None, "bytes=0-0", "bytes=1-", "bytes=0-3", f"bytes=2-{len(blob) + 5}", "bytes=-2", f"bytes={len(blob) + 10}-"]
        wanted = rng.choice(ranges)
        headers = {"Range": wanted} if wanted else {}
        return [plain(f"{method.lower()}_blob", f"{method} /v2/{repo}/blobs/{digest_of(blob)[:19]}… Range: {wanted} (size {len(blob)})",
                         method, f"/v2/{repo}/blobs/{digest_of(blob)}", headers=headers)]

    def _delete(self) -> list[Step]:
        rng, repo = self.rng, self.rng.choice(self.repos)
        if rng.random() < 0.6:
            reference = self._reference()
            return [plain("delete_manifest", f"DELETE /v2/{repo}/manifests/{reference}", "DELETE", f"/v2/{repo}/manifests/{reference}")]
        digest = digest_of(rng.choice(self.blobs))
        return [plain("delete_blob", f"DELETE /v2/{repo}/blobs/{digest}", "DELETE", f"/v2/{repo}/blobs/{digest}")]

    def _tags(self) -> list[Step]:
        rng, repo = self.rng, self.rng.choice(self.repos)
        query = rng.choice(["", "", "n=2", "n=1", "n=0", f"last={rng.choice(self.tags)}", f"n=1&last={rng.choice(self.tags)}", "n=-1", "n=x"])
        return [plain("tags_paged" if query else "tags", f"GET /v2/{repo}/tags/list?{query}", "GET",
                         f"/v2/{repo}/tags/list" + (f"?{query}" if query else ""))]

    def _referrers(self) -> list[Step]:
        repo, digest = self.rng.choice(self.repos), digest_of(self.manifests[0][1])
        return [plain("referrers", f"GET /v2/{repo}/referrers/{digest}", "GET", f"/v2/{repo}/referrers/{digest}")]

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
        return [plain(kind, f"{method} {path}", method, path, **body)]

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
        steps.append(plain("tags", f"GET /v2/{repo}/tags/list", "GET", f"/v2/{repo}/tags/list"))
        references = list(generator.tags) + [digest_of(body) for _, body in generator.manifests]
        steps += [plain("get_manifest", f"GET /v2/{repo}/manifests/{reference} Accept: {accept}", "GET",
                           f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept}) for reference in references]
        steps += [plain("get_blob", f"GET /v2/{repo}/blobs/{digest_of(blob)}", "GET", f"/v2/{repo}/blobs/{digest_of(blob)}")
                  for blob in generator.blobs]
    return steps
