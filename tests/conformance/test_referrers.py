"""OCI 1.1 content discovery: the referrers API (spec.md "Listing Referrers", "Pushing Manifests with Subject").

registry:2 2.8 has no referrers API (its router answers 404), so the checks of the API itself are expected to
fail against it: they are marked per target with a strict xfail that must fail on an assertion, so the day
registry:2 answers them the mark turns red instead of hiding it. What registry:2 does do (accept manifests with a
``subject``, send no ``OCI-Subject``) is checked against it like against the edge.

The edge-only checks at the end cover what only the edge can do: the same bucket served by several edges, and
manifests pushed through registry:2 (with the referrers tag a client keeps there, or found by ``reindex``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urljoin

import httpx
import orjson
import pytest

from tests.conformance.conftest import Target, digest_of, upload_blob
from tests.conformance.test_pull_and_push import OCI_MANIFEST, _push_image
from tests.support.edge import REPO_ROOT

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
SIGNATURE = "application/vnd.example.signature.v1"
SBOM = "application/vnd.example.sbom.v1"

NO_REFERRERS_API = pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="registry:2 2.8 has no referrers API: GET /v2/<name>/referrers/<digest> is 404"
)
API_TARGETS = ["edge", pytest.param("registry2", marks=NO_REFERRERS_API)]


def push_artifact(
    client: httpx.Client,
    repository: str,
    subject: tuple[str, int],
    artifact_type: str | None = SIGNATURE,
    config_type: str = EMPTY,
    annotations: dict[str, str] | None = None,
    payload: bytes = b"signature",
) -> tuple[str, bytes, httpx.Response]:
    """Push an artifact manifest whose subject is `subject` (digest, size), by digest as ORAS and cosign do."""
    config_digest = upload_blob(client, repository, b"{}")
    layer_digest = upload_blob(client, repository, payload)
    document: dict = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer_digest, "size": len(payload)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": subject[1]},
        "annotations": annotations if annotations is not None else {"org.example.payload": payload.decode()},
    }
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    manifest = orjson.dumps(document)
    digest = digest_of(manifest)
    response = client.put(f"/v2/{repository}/manifests/{digest}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest, manifest, response


def push_subject(client: httpx.Client, repository: str, tag: str = "v1") -> tuple[str, int]:
    digest, manifest = _push_image(client, repository, tag)
    return digest, len(manifest)


def referrers(client: httpx.Client, repository: str, subject: str, **query: str) -> httpx.Response:
    return client.get(f"/v2/{repository}/referrers/{subject}", params=query)


def listed(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == OCI_INDEX
    body = response.json()
    assert body["schemaVersion"] == 2 and body["mediaType"] == OCI_INDEX
    return sorted(item["digest"] for item in body["manifests"])


# -- the API, against both targets --------------------------------------------------------------------------


@pytest.mark.parametrize("target", API_TARGETS, indirect=True)
def test_referrers_of_an_unreferenced_digest_is_an_empty_index(target: Target):
    with target.client() as client:
        repository = target.repository("referrers-none")
        subject = push_subject(client, repository)
        assert listed(referrers(client, repository, subject[0])) == []
        assert listed(referrers(client, repository, "sha256:" + "0" * 64)) == []


@pytest.mark.parametrize("target", API_TARGETS, indirect=True)
def test_referrers_lists_each_descriptor_as_the_spec_builds_it(target: Target):
    with target.client() as client:
        repository = target.repository("referrers-descriptors")
        subject = push_subject(client, repository)
        typed, typed_bytes, _ = push_artifact(client, repository, subject, SIGNATURE, annotations={"a": "1"})
        by_config, config_bytes, _ = push_artifact(client, repository, subject, None, config_type=SBOM, payload=b"sbom")
        response = referrers(client, repository, subject[0])
        assert listed(response) == sorted([typed, by_config])
        descriptors = {item["digest"]: item for item in response.json()["manifests"]}
        assert descriptors[typed] == {
            "mediaType": OCI_MANIFEST, "digest": typed, "size": len(typed_bytes), "artifactType": SIGNATURE, "annotations": {"a": "1"}
        }
        assert descriptors[by_config]["artifactType"] == SBOM  # no artifactType: the config's mediaType
        assert descriptors[by_config]["size"] == len(config_bytes)


@pytest.mark.parametrize("target", API_TARGETS, indirect=True)
def test_referrers_include_an_index_with_a_subject(target: Target):
    with target.client() as client:
        repository = target.repository("referrers-index")
        subject = push_subject(client, repository)
        child, child_bytes = _push_image(client, repository, "child", layer=b"child layer")
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_bytes)}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": subject[1]},
            "annotations": {"kind": "index"},
        }
        data = orjson.dumps(document)
        pushed = client.put(f"/v2/{repository}/manifests/{digest_of(data)}", content=data, headers={"Content-Type": OCI_INDEX})
        assert pushed.status_code == 201, pushed.text
        response = referrers(client, repository, subject[0])
        assert listed(response) == [digest_of(data)]
        [descriptor] = response.json()["manifests"]
        assert descriptor == {"mediaType": OCI_INDEX, "digest": digest_of(data), "size": len(data), "annotations": {"kind": "index"}}


@pytest.mark.parametrize("target", API_TARGETS, indirect=True)
def test_referrers_filter_by_artifact_type_says_so(target: Target):
    with target.client() as client:
        repository = target.repository("referrers-filter")
        subject = push_subject(client, repository)
        signature, _, _ = push_artifact(client, repository, subject, SIGNATURE)
        push_artifact(client, repository, subject, SBOM, payload=b"sbom")
        response = referrers(client, repository, subject[0], artifactType=SIGNATURE)
        assert listed(response) == [signature]
        assert response.headers["OCI-Filters-Applied"] == "artifactType"
        assert "OCI-Filters-Applied" not in referrers(client, repository, subject[0]).headers


@pytest.mark.parametrize("target", API_TARGETS, indirect=True)
def test_referrers_pages_follow_the_link_header(target: Target):
    with target.client() as client:
        repository = target.repository("referrers-pages")
        subject = push_subject(client, repository)
        pushed = sorted(push_artifact(client, repository, subject, payload=f"sig {i}".encode())[0] for i in range(3))
        first = referrers(client, repository, subject[0], n="2")
        seen = listed(first)
        assert len(seen) == 2
        assert first.headers["Link"].endswith('>; rel="next"')
        following = client.get(urljoin(str(client.base_url), first.headers["Link"].split(";")[0].strip("<>")))
        seen += listed(following)
        assert "Link" not in following.headers
        assert sorted(seen) == pushed


@pytest.mark.parametrize("target", API_TARGETS, indirect=True)
def test_a_deleted_referrer_leaves_the_list(target: Target):
    with target.client() as client:
        repository = target.repository("referrers-delete")
        subject = push_subject(client, repository)
        kept, _, _ = push_artifact(client, repository, subject, payload=b"kept")
        gone, _, _ = push_artifact(client, repository, subject, payload=b"gone")
        assert listed(referrers(client, repository, subject[0])) == sorted([kept, gone])
        assert client.delete(f"/v2/{repository}/manifests/{gone}").status_code == 202
        assert listed(referrers(client, repository, subject[0])) == [kept]


@pytest.mark.parametrize("target", API_TARGETS, indirect=True)
def test_referrers_of_an_invalid_digest_is_400(target: Target):
    with target.client() as client:
        repository = target.repository("referrers-invalid")
        push_subject(client, repository)
        response = referrers(client, repository, "sha256:not-hex")
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"


def test_a_manifest_whose_subject_is_not_pushed_yet_is_accepted(target: Target):
    """spec.md: a registry MUST accept a subject that does not exist yet (referrers may come first)."""
    with target.client() as client:
        repository = target.repository("referrers-early")
        push_artifact(client, repository, ("sha256:" + "5" * 64, 123))


def test_oci_subject_is_sent_only_when_the_referrers_api_lists_the_manifest(target: Target):
    """spec.md: OCI-Subject tells the client the registry processed the subject, so the client skips the
    referrers tag. Sending it without listing the manifest loses the referrer; both targets must be coherent
    (registry:2: no header, no API; the edge: header, and the API lists it)."""
    with target.client() as client:
        repository = target.repository("referrers-header")
        subject = push_subject(client, repository)
        digest, _, response = push_artifact(client, repository, subject)
        answer = referrers(client, repository, subject[0])
        api_lists_it = answer.status_code == 200 and digest in listed(answer)
        assert ("OCI-Subject" in response.headers) == api_lists_it
        if api_lists_it:
            assert response.headers["OCI-Subject"] == subject[0]


# -- what only the edge does: one bucket, several edges, and registry:2 pushes ------------------------------


def test_an_artifact_pushed_through_one_edge_is_listed_by_another(conformance_edge, other_edge):
    repository = "conformance/edges/shared"
    with httpx.Client(base_url=conformance_edge.url, timeout=60) as pusher, httpx.Client(base_url=other_edge.url, timeout=60) as reader:
        subject = push_subject(pusher, repository)
        signature, _, _ = push_artifact(pusher, repository, subject)
        assert listed(referrers(reader, repository, subject[0])) == [signature]


def test_a_referrer_deleted_through_one_edge_is_gone_from_another(conformance_edge, other_edge):
    repository = "conformance/edges/deleted"
    with httpx.Client(base_url=conformance_edge.url, timeout=60) as writer, httpx.Client(base_url=other_edge.url, timeout=60) as reader:
        subject = push_subject(writer, repository)
        gone, _, _ = push_artifact(writer, repository, subject)
        assert writer.delete(f"/v2/{repository}/manifests/{gone}").status_code == 202
        assert listed(referrers(reader, repository, subject[0])) == []


def push_referrers_tag(client: httpx.Client, repository: str, subject: str, entries: list[dict]) -> None:
    """What a client does on a registry without the referrers API: an image index under the <alg>-<hex> tag."""
    data = orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    tag = subject.replace(":", "-")
    response = client.put(f"/v2/{repository}/manifests/{tag}", content=data, headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 201, response.text


def test_an_artifact_pushed_through_registry2_with_the_referrers_tag_is_listed_by_the_edge(registry_s3, conformance_edge):
    repository = "conformance/registry2/tagged"
    with httpx.Client(base_url=registry_s3.url, timeout=60) as registry, httpx.Client(base_url=conformance_edge.url, timeout=60) as edge:
        subject = push_subject(registry, repository)
        signature, signature_bytes, response = push_artifact(registry, repository, subject, annotations={"by": "registry2"})
        assert "OCI-Subject" not in response.headers  # so the client keeps the tag:
        unrelated, unrelated_bytes = _push_image(registry, repository, "other", layer=b"no subject here")
        push_referrers_tag(
            registry,
            repository,
            subject[0],
            [
                {"mediaType": OCI_MANIFEST, "digest": signature, "size": len(signature_bytes), "artifactType": SIGNATURE},
                {"mediaType": OCI_MANIFEST, "digest": unrelated, "size": len(unrelated_bytes)},  # no subject: not listed
            ],
        )
        answer = referrers(edge, repository, subject[0])
        assert listed(answer) == [signature]
        assert answer.json()["manifests"][0]["annotations"] == {"by": "registry2"}  # built from the manifest itself


def _reindex(edge, repository: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirror", "reindex", "--config", str(edge.config_path), repository],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def test_reindex_finds_an_artifact_pushed_through_registry2_without_the_tag(registry_s3, conformance_edge, other_edge):
    repository = "conformance/registry2/untagged"
    with httpx.Client(base_url=registry_s3.url, timeout=60) as registry:
        subject = push_subject(registry, repository)
        signature, _, _ = push_artifact(registry, repository, subject)
    with httpx.Client(base_url=other_edge.url, timeout=60) as before:
        assert listed(referrers(before, repository, subject[0])) == []  # registry:2 wrote no index entry
    done = _reindex(conformance_edge, repository)
    assert done.returncode == 0, done.stderr
    assert f"{repository}: 2 manifests, 1 referrers indexed, 0 stale entries removed" in done.stdout
    with httpx.Client(base_url=conformance_edge.url, timeout=60) as after:
        assert listed(referrers(after, repository, subject[0])) == [signature]


def test_reindex_drops_entries_of_manifests_deleted_through_registry2(registry_s3, conformance_edge):
    repository = "conformance/registry2/deleted"
    with httpx.Client(base_url=conformance_edge.url, timeout=60) as edge:
        subject = push_subject(edge, repository)
        signature, _, _ = push_artifact(edge, repository, subject)
    with httpx.Client(base_url=registry_s3.url, timeout=60) as registry:
        assert registry.delete(f"/v2/{repository}/manifests/{signature}").status_code == 202  # index untouched
    done = _reindex(conformance_edge, repository)
    assert done.returncode == 0, done.stderr
    assert "1 stale entries removed" in done.stdout
