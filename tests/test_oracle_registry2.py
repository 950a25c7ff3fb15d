"""registry:2 as an oracle: random request sequences sent to an edge and to registry:2 must get the same answers.

Design (lock-step on twin storage). Each sequence is sent step by step to registry:2 (filesystem root R) and to an
edge (`storage.delete = true`, anonymous pull/push/delete) on its own storage — a filesystem root, or a bucket of
SeaweedFS (the S3 path pushes take in production) — each writing under the same repository names. Every request of a sequence therefore is a write or a read on both sides, and
the two answers are compared right away: a delete followed by a read compares each server's view of its own
delete, which is what a client of that server sees. Sharing one root between the two writers would not give a
true differential result: the edge trusts tag and link answers for `cache.tag_ttl` / `cache.link_ttl` by design,
so a read on the edge after a write or delete made through registry:2 answers from the cache, a documented
difference, and no TTL may be waited out in a test. The layout itself is still checked on shared storage: after
each sequence a second edge with an empty cache, reading registry:2's root R, must answer the sequence's final
reads (tags, every manifest and blob) as registry:2 does; and on the filesystem backend a second registry:2,
reading the edge's root, must answer them as registry:2 does on its own root (what the edge wrote is registry:2's
layout), for every sequence whose two states stayed alike. Every sequence uses fresh repository names, so state
is carried from one sequence to the next only through storage, and no reader has seen those names before.

What is compared (`tests/support/oracle.py`): status, error codes, and for 2xx answers Docker-Content-Digest,
Content-Length (blobs and manifests), Content-Range, Range (uploads), Content-Type (manifests), the shape of
Location (path with the upload id masked; host and registry:2's signed `_state` query are each server's own),
the body's digest, and tag lists as JSON.

Bounded: FIXED_SEED plus one random seed per run, SEQUENCES each, on each edge backend (about 80 s here). A failure prints the seed and the sequence;
replay one with ``ORACLE_SEED=<seed> python3 -m pytest tests/test_oracle_registry2.py -k random``.
"""

from __future__ import annotations

import os
import random
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.edge import ANONYMOUS_PUSH, EdgeMirror, filesystem_storage, s3_storage
from tests.support.oracle import Allowed, Answer, Step, lockstep
from tests.support.oracle_sequences import Generator, final_reads
from tests.support.registry2 import Registry2

FIXED_SEED = 19
SEQUENCES = 10


# -- the allowlist: every intended difference, with its reason ---------------------------------------------------
def _paged_as_spec_says(step: Step, ours: Answer, theirs: Answer) -> bool:
    """registry:2's whole tag list, cut as spec.md says for `n` and `last`, is the edge's page."""
    query = parse_qs(urlsplit(step.param("path")).query)
    if theirs.status != 200 or ours.status != 200 or not (query.get("n", ["0"])[0].isdigit()):
        return False
    tags = sorted((theirs.body or {}).get("tags") or [])
    if "last" in query:
        tags = [tag for tag in tags if tag > query["last"][0]]
    page = tags[: int(query["n"][0])] if "n" in query else tags
    more = "n" in query and len(tags) > int(query["n"][0])
    return (ours.body or {}).get("tags") == page and dict(ours.headers).get("link") == ("link" if more and page else "")


ALLOWLIST: list[Allowed] = [
    Allowed(
        "base-route-any-method",
        "registry:2's /v2/ handler answers every method with 200; the spec defines only GET /v2/, and the edge "
        "answers other methods with 405 UNSUPPORTED",
        lambda step, ours, theirs: step.param("path") == "/v2/" and ours.status == 405 and theirs.status == 200,
    ),
    Allowed(
        "each-missing-blob-named",
        "registry:2 lists one MANIFEST_BLOB_UNKNOWN per missing blob of a manifest; the edge names the first it "
        "finds (one RegistryError per answer): same status, same code, clients read the first",
        lambda step, ours, theirs: step.kind == "put_manifest" and ours.status == theirs.status == 400
        and set(ours.codes) == set(theirs.codes) == {"MANIFEST_BLOB_UNKNOWN"},
    ),
    Allowed(
        "manifest-as-application-json",
        "a manifest PUT with Content-Type application/json: registry:2 2.8 takes that for schema 1 (disabled) and "
        "answers MANIFEST_INVALID; the edge reads the media type from the body, as the spec's mediaType field "
        "allows, and checks it as such (the two states differ afterwards when the edge accepts it)",
        lambda step, ours, theirs: step.kind == "put_manifest_json" and theirs.codes == ("MANIFEST_INVALID",),
        diverges=True,
    ),
    Allowed(
        "head-ignores-range",
        "registry:2 (Go's http.ServeContent) answers a HEAD with a Range header as 206; RFC 9110 §14.2 defines "
        "Range for GET only and says a server MUST ignore it on other methods: the edge answers 200, whole length "
        "(registry:2 even answers 416 to a HEAD of the empty blob with a Range)",
        lambda step, ours, theirs: step.kind == "head_blob" and "Range" in (step.param("headers") or "")
        and theirs.status in (206, 416) and ours.status == 200,
    ),
    Allowed(
        "no-referrers-api",
        "registry:2 2.8 has no OCI 1.1 referrers API (its router answers 404 with no JSON body); the edge has it",
        lambda step, ours, theirs: step.kind == "referrers" and theirs.status == 404 and theirs.codes == (),
    ),
    Allowed(
        "delete-by-tag",
        "DELETE of a manifest by tag, which neither server supports: registry:2 2.8 answers 400 DIGEST_INVALID, "
        "the edge 405 UNSUPPORTED; spec.md lets a registry without tag deletion answer either 400 or 405",
        lambda step, ours, theirs: step.kind == "delete_manifest" and "sha256:" not in step.param("path")
        and theirs.status == 400 and ours.status == 405 and ours.codes == ("UNSUPPORTED",),
    ),
    Allowed(
        "plain-text-error-pages",
        "for a request its router does not match (unknown method on a route, malformed name, digest or tag) "
        "registry:2 answers with the same status but a plain-text body; the edge adds an OCI JSON error body",
        lambda step, ours, theirs: step.kind in ("bad_method", "bad_name", "bad_digest", "bad_reference")
        and ours.status == theirs.status and theirs.codes == () and len(ours.codes) == 1,
    ),
    Allowed(
        "registry2-500-on-a-short-digest",
        "registry:2 2.8 answers a manifest reference `sha256:` + 63 hex digits with 500 UNKNOWN (its router takes "
        "it as a tag-like digest and the parse fails late); the edge answers 400 DIGEST_INVALID",
        lambda step, ours, theirs: step.kind == "bad_digest" and theirs.status == 500
        and ours.status == 400 and ours.codes == ("DIGEST_INVALID",),
    ),
    Allowed(
        "unknown-upload-code",
        "a request to an upload session that does not exist, or to a session of another repository through this "
        "one's name: registry:2 2.8 answers 404 BLOB_UPLOAD_INVALID (no signed `_state`, or one naming the other "
        "repository); the edge answers 404 BLOB_UPLOAD_UNKNOWN, the code spec.md names. Both refuse",
        lambda step, ours, theirs: step.kind in ("unknown_upload", "cross_repo_upload") and theirs.status == ours.status == 404
        and theirs.codes == ("BLOB_UPLOAD_INVALID",) and ours.codes == ("BLOB_UPLOAD_UNKNOWN",),
    ),
    Allowed(
        "invalid-name",
        "a repository name outside the spec's grammar (upper case, empty or doubled separators): registry:2's "
        "router does not match it or matches a shorter name, and answers 404 (plain text or MANIFEST_UNKNOWN/"
        "BLOB_UNKNOWN), or Go's path cleaning redirects `//` with 301; the edge answers 400 NAME_INVALID, the "
        "spec's code for it",
        lambda step, ours, theirs: step.kind == "bad_name" and theirs.status in (301, 404, 405)
        and ours.status == 400 and ours.codes == ("NAME_INVALID",),
    ),
    Allowed(
        "out-of-order-chunk",
        "a PATCH whose Content-Range does not continue the upload: spec.md says 416; registry:2 2.8 ignores "
        "Content-Range and answers 202 (distribution 3.0 added the check), the edge answers 416 "
        "BLOB_UPLOAD_INVALID (the two uploads differ afterwards)",
        lambda step, ours, theirs: step.kind == "patch_out_of_order" and theirs.status == 202
        and ours.status == 416 and ours.codes == ("BLOB_UPLOAD_INVALID",),
        diverges=True,
    ),
    Allowed(
        "range-past-the-end",
        "a GET Range starting past a blob's end: registry:2 2.8 announces a Content-Length it then does not send "
        "(the client sees a broken response), or, on the empty blob, a plain-text 416; the edge answers 416 "
        "with an OCI error body (416 UNSUPPORTED, README's error table)",
        lambda step, ours, theirs: step.kind == "get_blob" and ours.status == 416 and len(ours.codes) == 1
        and (theirs.status == 0 or (theirs.status == 416 and theirs.codes == ())),
    ),
    Allowed(
        "tags-pagination",
        "registry:2 2.8 ignores `n` and `last` on tags/list and always answers the whole list (distribution 3.0 "
        "added them); the edge's page must be registry:2's whole list cut as spec.md says, with a Link header "
        "exactly when more tags follow",
        _paged_as_spec_says,
    ),
    Allowed(
        "tags-page-size-invalid",
        "tags/list with `n` that is not a whole number (-1, x): registry:2 2.8 ignores `n` (200, whole list); the "
        "edge refuses it with 400 and a spec code, as it does for the catalog",
        lambda step, ours, theirs: step.kind == "tags_paged" and theirs.status == 200 and ours.status == 400
        and len(ours.codes) == 1,
    ),
    Allowed(
        "accept-any-type",
        "GET/HEAD of an OCI manifest or index with `Accept: */*`: registry:2 2.8 serves OCI types only to clients "
        "that name them (404 MANIFEST_UNKNOWN otherwise); the edge takes `*/*` as accepting every type, as RFC "
        "9110 defines it (mirror/api/negotiation.py)",
        lambda step, ours, theirs: step.kind in ("get_manifest", "head_manifest") and "*/*" in (step.param("headers") or "")
        and theirs.status == 404 and theirs.codes in (("MANIFEST_UNKNOWN",), ()) and ours.status == 200,
    ),
    Allowed(
        "manifest-too-large",
        "a manifest over 4 MiB: both refuse it with MANIFEST_INVALID; registry:2 2.8.2 answers 400, the edge 413 "
        "Payload Too Large, the status that says what is wrong with the request",
        lambda step, ours, theirs: step.kind == "put_manifest_big" and theirs.status == 400 and ours.status == 413
        and theirs.codes == ours.codes == ("MANIFEST_INVALID",),
    ),
    Allowed(
        "sha512-upload-kept-as-sha512",
        "an upload finished with a sha512 digest: registry:2 answers with the canonical sha256 digest (spec.md: the "
        "returned digest MAY differ from the provided one) and links the blob under both; the edge keeps it under "
        "the sha512 digest it was given (the two repositories differ afterwards: a sha256 reference to it is "
        "unknown to the edge)",
        lambda step, ours, theirs: step.kind == "finish_sha512" and theirs.status == ours.status == 201
        and dict(ours.headers).get("docker-content-digest", "").startswith("sha512:"),
        diverges=True,
    ),
    Allowed(
        "finish-of-an-unknown-session-whose-blob-is-linked",
        "a PUT ?digest= to an upload session this repository does not know, for a digest the repository already "
        "links: the edge answers 201 (mirror/push/uploads.py: the retry of a PUT whose answer was lost; nothing "
        "is written, the repository's content is the same), registry:2 404",
        lambda step, ours, theirs: step.kind in ("finish_upload", "cross_repo_upload") and step.param("method") == "PUT"
        and theirs.status == 404 and ours.status == 201,
    ),
    Allowed(
        "suffix-range-of-the-empty-blob",
        "`Range: bytes=-N` on the empty blob: registry:2 answers 206 with `Content-Range: bytes 0--1/0`, which is "
        "no valid range; RFC 9110 makes every range of an empty representation unsatisfiable: the edge answers 416",
        lambda step, ours, theirs: step.kind == "get_blob" and theirs.status == 206
        and dict(theirs.headers).get("content-range") == "bytes 0--1/0" and ours.status == 416,
    ),
    Allowed(
        "no-schema1-conversion",
        "a Docker schema 2 manifest asked by tag with an Accept that does not name it: registry:2 2.8 tries to "
        "rewrite it to schema 1, which is disabled, and answers 400 MANIFEST_INVALID; the edge never converts and "
        "serves it as stored (mirror/api/negotiation.py)",
        lambda step, ours, theirs: step.kind in ("get_manifest", "head_manifest") and theirs.status == 400
        and ours.status == 200 and dict(ours.headers).get("content-type") == "application/vnd.docker.distribution.manifest.v2+json",
    ),
    Allowed(
        "malformed-digest-in-the-path",
        "registry:2's router only matches well-formed digests, so a malformed one is its plain-text 404 page; the "
        "edge matches the route and answers a clear OCI error (400 DIGEST_INVALID, or 404 with a spec code)",
        lambda step, ours, theirs: step.kind == "bad_digest" and theirs.status == 404 and theirs.codes == ()
        and ours.status in (400, 404) and len(ours.codes) == 1,
    ),
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """registry:2 on its filesystem root, the edge reading it, and one writing edge per backend (own root/bucket)."""
    work = tmp_path_factory.mktemp("oracle")
    registry = Registry2.filesystem(work / "registry-root", workdir=work / "registry")
    reader = EdgeMirror(work / "reader", filesystem_storage(work / "registry-root"))
    edges: dict[str, EdgeMirror] = {}
    try:
        reader.start()
        yield registry, edges, reader
    finally:
        for server in (reader, *edges.values(), registry):
            if server is not None:
                server.stop()


@pytest.fixture(params=["filesystem", "s3"])
def edge(request, servers, tmp_path_factory):
    """The writing edge: on its own filesystem root (with a registry:2 reading that root), or on its own bucket
    of the session's SeaweedFS."""
    edges = servers[1]
    if request.param not in edges:
        work = tmp_path_factory.mktemp(f"oracle-edge-{request.param}")
        checker = None
        if request.param == "s3":
            seaweed = request.getfixturevalue("seaweed")
            seaweed.create_bucket("oracle-edge")
            storage = s3_storage(seaweed.endpoint, "oracle-edge")
        else:
            storage = filesystem_storage(work / "root")
            checker = Registry2.filesystem(work / "root", workdir=work / "registry-on-edge-root")
        storage["storage"]["delete"] = True
        edges[request.param] = EdgeMirror(work, storage, auth=ANONYMOUS_PUSH).start()
        edges[f"{request.param}-checker"] = checker
    return edges[request.param], edges[f"{request.param}-checker"]


RANDOM_SEED = int(os.environ.get("ORACLE_SEED") or random.SystemRandom().randrange(2**32))  # one per run


def _seed(which: str) -> int:
    return FIXED_SEED if which == "fixed" else RANDOM_SEED


@pytest.mark.parametrize("which", ["fixed", "random"])
def test_the_edge_answers_request_sequences_as_registry2_does(servers, edge, which):
    registry, _, reader = servers
    edge, checker = edge
    seed = _seed(which)
    print(f"oracle seed: {seed}")
    generator = Generator(seed, f"oracle/{edge.url.rsplit(':', 1)[1]}-{which}{seed}")
    hits: dict[str, int] = {}
    failures = []
    with httpx.Client(base_url=registry.url, timeout=30) as theirs, httpx.Client(base_url=edge.url, timeout=30) as ours, \
            httpx.Client(base_url=reader.url, timeout=30) as shared, \
            httpx.Client(base_url=(checker or registry).url, timeout=30) as layout_check:
        for index in range(SEQUENCES):
            steps = generator.sequence(index)
            failure, alike = lockstep(seed, index, steps, (theirs, ours), ALLOWLIST, hits, "the edge's answer")
            reads = final_reads(generator)
            failure = failure or lockstep(seed, index, reads, (theirs, shared), ALLOWLIST, hits,
                                          "after the sequence, an edge reading registry:2's storage")[0]
            if checker is not None and alike and not failure:
                failure = lockstep(seed, index, reads, (theirs, layout_check), ALLOWLIST, hits,
                                   "after the sequence, registry:2 reading the edge's storage")[0]
            if failure:
                failures.append(failure.report())
    print(f"allowed differences seen: {hits}")
    assert not failures, f"oracle seed {seed}: {len(failures)} of {SEQUENCES} sequences differ\n\n" + "\n\n".join(failures[:5])
