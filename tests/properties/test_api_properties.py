"""Property-based tests (hypothesis) of the API over names, tags, digests, Range, Accept, query strings and upload
sequences: never a 5xx, the right OCI error code, and no backend key outside the layout prefix.

They run the ASGI app in-process over a real filesystem backend (fast: no process, no socket), with modest
example counts so CI stays quick; the request-level fuzzer in ``load/fuzz.py`` does the same against a live edge.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mirror import config, errors, layout
from mirror.api import create_app
from mirror.domain import Problem
from mirror.reference import NAME_RE, TAG_RE, parse_digest
from tests.support.digests import digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
CODES = {value.code for value in vars(errors).values() if isinstance(value, errors.ErrorCode)}
EXAMPLES = settings(
    database=None,  # no example database written into the checkout
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LAYER = random.Random(9).randbytes(70_000)
CONFIG = b'{"architecture":"amd64","os":"linux"}'
URL_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~:+=@!$&'()*,;%"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties-root")


@pytest.fixture(scope="module")
def client(root, tmp_path_factory):
    environ = {
        "MIRROR_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root),
        "MIRROR_CACHE_DIR": str(tmp_path_factory.mktemp("properties-cache")),
        "MIRROR_STORAGE_DELETE": "true",
        "MIRROR_AUTH_ANONYMOUS": "pull,push,delete",
    }
    with TestClient(create_app(config.load(None, environ=environ)), raise_server_exceptions=False) as http:
        config_blob = CONFIG
        for data in (config_blob, LAYER, b""):
            for name in ("prop/app", "prop/manifests"):
                assert http.post(f"/v2/{name}/blobs/uploads/?digest={digest_of(data)}", content=data).status_code == 201
        manifest = orjson.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config_blob), "size": len(config_blob)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(LAYER), "size": len(LAYER)}],
            }
        )
        assert http.put("/v2/prop/app/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST}).status_code == 201
        yield http
    _only_layout_keys(root)


def _only_layout_keys(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for file in files:
            relative = Path(directory, file).relative_to(root).as_posix()
            assert relative.startswith(layout.PREFIX + "/"), relative
            assert ".." not in relative.split("/"), relative


def _check(response, expected: set[str] | None = None) -> None:
    """No 5xx; an error has a JSON body with one known OCI code (one of `expected` when given)."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400 and response.request.method != "HEAD":
        body = orjson.loads(response.content)
        code = body["errors"][0]["code"]
        assert code in CODES, body
        if expected is not None:
            assert code in expected, body


junk = st.text(alphabet=URL_SAFE, min_size=1, max_size=80)
names = st.one_of(st.from_regex(NAME_RE, fullmatch=True).filter(lambda name: len(name) <= 255), junk, st.just("prop/app"))
tags = st.one_of(st.from_regex(TAG_RE, fullmatch=True), junk, st.just("v1"))
digests = st.one_of(
    st.builds(lambda data: digest_of(data), st.binary(max_size=8)),
    st.builds(lambda hex_: f"sha256:{hex_}", st.text(alphabet="0123456789abcdefABCDEF", max_size=70)),
    st.builds(lambda algorithm, hex_: f"{algorithm}:{hex_}", st.sampled_from(["sha512", "md5", "SHA256", "sha256+b64"]), st.text(alphabet="0123456789abcdef", max_size=130)),
    st.just(digest_of(LAYER)),
    junk.filter(lambda text: text not in (".", "..")),  # dot segments: the client resolves them away
)


@EXAMPLES
@given(name=names, reference=st.one_of(tags, digests), method=st.sampled_from(["GET", "HEAD", "DELETE"]))
def test_manifest_requests_never_fail_with_a_5xx(client, name, reference, method):
    response = client.request(method, f"/v2/{quote(name, safe='/')}/manifests/{quote(reference, safe=':')}")
    expected = None
    if len(name) <= 255 and not NAME_RE.fullmatch(name):
        expected = {"NAME_INVALID", errors.NOT_FOUND.code}
    _check(response, expected)


@EXAMPLES
@given(
    name=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabc0123456789._-", min_size=1, max_size=60).filter(
        lambda name: not NAME_RE.fullmatch(name) and name not in (".", "..")  # dot segments: the client resolves them
    )
)
def test_an_invalid_name_is_name_invalid(client, name):
    response = client.get(f"/v2/{name}/tags/list")
    assert response.status_code == 400
    _check(response, {"NAME_INVALID"})


@EXAMPLES
@given(
    tag=st.text(alphabet="abcXYZ0129._-", min_size=1, max_size=200).filter(
        lambda tag: not TAG_RE.fullmatch(tag) and tag not in (".", "..")  # dot segments: the client resolves them
    )
)
def test_an_invalid_tag_is_tag_invalid(client, tag):
    response = client.get(f"/v2/prop/app/manifests/{tag}")
    assert response.status_code == errors.TAG_INVALID.status
    _check(response, {errors.TAG_INVALID.code})


def _valid_digest(text: str) -> bool:
    try:
        parse_digest(text)
    except Problem:
        return False
    return True


@EXAMPLES
@given(digest=digests, method=st.sampled_from(["GET", "HEAD"]))
def test_a_blob_digest_is_served_or_refused_with_the_right_code(client, digest, method):
    response = client.request(method, f"/v2/prop/app/blobs/{quote(digest, safe=':')}")
    if _valid_digest(digest):
        _check(response, {"BLOB_UNKNOWN"})
        assert response.status_code in (200, 404)
    else:
        assert response.status_code == 400
        _check(response, {"DIGEST_INVALID"})


# Positions: small, near the blob's end, beyond any blob, and longer than Python converts (4,300 digits).
positions = st.one_of(
    st.just(""),
    st.integers(0, 80_000).map(str),
    st.integers(10**18, 10**40).map(str),
    st.integers(4_290, 4_400).map(lambda length: "9" * length),
)
ranges = st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", positions, positions),
    st.text(alphabet="bytes=-0123456789, \t", max_size=40),
    junk,
)


@EXAMPLES
@given(header=ranges, blob=st.sampled_from([LAYER, b""]))
def test_any_range_header_is_answered_whole_partial_or_416(client, header, blob):
    response = client.get(f"/v2/prop/app/blobs/{digest_of(blob)}", headers={"Range": header})
    assert response.status_code in (200, 206, 416), response.text[:300]
    _check(response, {errors.RANGE_NOT_SATISFIABLE.code})
    if response.status_code == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers["Content-Range"])
        assert match and int(match.group(3)) == len(blob) and int(match.group(1)) <= int(match.group(2))
        assert response.content == blob[int(match.group(1)) : int(match.group(2)) + 1]
    elif response.status_code == 200:
        assert response.content == blob


accepts = st.lists(
    st.one_of(st.sampled_from([OCI_MANIFEST, "*/*", "application/json", "application/vnd.oci.image.index.v1+json", ""]), junk),
    max_size=4,
).map(lambda items: ", ".join(items))


@EXAMPLES
@given(accept=accepts)
def test_any_accept_header_gets_the_manifest_or_manifest_unknown(client, accept):
    response = client.get("/v2/prop/app/manifests/v1", headers={"Accept": accept})
    assert response.status_code in (200, 404)
    _check(response, {"MANIFEST_UNKNOWN"})


queries = st.dictionaries(
    st.sampled_from(["n", "last", "digest", "mount", "from", "ns", "x"]),
    st.one_of(st.integers(-5, 10**12).map(str), junk, st.just("")),
    max_size=4,
)


@EXAMPLES
@given(query=queries, path=st.sampled_from(["/v2/_catalog", "/v2/prop/app/tags/list", "/v2/prop/app/blobs/uploads/"]))
def test_any_query_string_is_answered_without_a_5xx(client, query, path):
    method = "POST" if path.endswith("/uploads/") else "GET"
    response = client.request(method, path, params=query)
    _check(response)
    # (a `from` is checked as a repository name on every route, as registry:2 does: it may answer first)
    if method == "GET" and "n" in query and not query["n"].isdigit() and "from" not in query:
        assert response.status_code == 400
        _check(response, {errors.PAGINATION_NUMBER_INVALID.code})


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("patch"), st.binary(max_size=3000), st.sampled_from(["none", "right", "wrong_start", "wrong_length", "huge"])
        ),
        st.tuples(st.just("status"), st.just(b""), st.just("")),
        st.tuples(st.just("big"), st.just(b""), st.just("")),
    ),
    max_size=6,
)


@settings(EXAMPLES, max_examples=max(10, EXAMPLES.max_examples // 3))
@given(steps=operations, finish=st.sampled_from(["right", "wrong", "cancel"]), seed=st.integers(0, 2**16))
def test_upload_sequences_publish_exactly_the_accepted_bytes(client, steps, finish, seed):
    """Whatever chunks a client sends (right or wrong Content-Range), the session holds exactly the chunks that
    were accepted, and the blob published is those bytes."""
    start = client.post("/v2/prop/up/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["Location"]
    accepted = b""
    for kind, data, content_range in steps:
        if kind == "status":
            response = client.get(location)
            assert response.status_code == 204
            assert response.headers["Range"] == f"0-{max(len(accepted) - 1, 0)}"
            continue
        if kind == "big":  # enough for a multipart part
            data, content_range = random.Random(seed).randbytes(5 * 1024 * 1024 + 7), "none"
        headers = {}
        if content_range == "right":
            headers["Content-Range"] = f"{len(accepted)}-{len(accepted) + len(data) - 1}"
        elif content_range == "wrong_start":
            headers["Content-Range"] = f"{len(accepted) + 1}-{len(accepted) + len(data)}"
        elif content_range == "wrong_length":
            headers["Content-Range"] = f"{len(accepted)}-{len(accepted) + len(data) + 5}"
        elif content_range == "huge":
            headers["Content-Range"] = f"{len(accepted)}-{'9' * 4400}"
        response = client.patch(location, content=data, headers=headers)
        _check(response)
        if content_range in ("none", "right") and (data or content_range == "none"):
            assert response.status_code == 202, response.text
            accepted += data
        elif content_range == "right":
            assert response.status_code in (202, 416)  # an empty chunk has no valid Content-Range
        else:
            assert response.status_code in (400, 416)
    if finish == "cancel":
        assert client.delete(location).status_code == 204
        assert client.get(location).status_code == 404
        return
    digest = digest_of(accepted if finish == "right" else accepted + b"!")
    response = client.put(f"{location}?digest={digest}")
    _check(response)
    if finish == "right":
        assert response.status_code == 201, response.text
        assert client.get(f"/v2/prop/up/blobs/{digest}").content == accepted
    else:
        assert response.status_code == 400
        _check(response, {"DIGEST_INVALID"})


descriptor_values = st.one_of(
    st.none(), st.integers(-3, 10**20), st.booleans(), st.text(max_size=20), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), st.just(digest_of(LAYER)), st.just("sha256:" + "0" * 64),
)
descriptors = st.one_of(
    st.just({"mediaType": OCI_CONFIG, "digest": digest_of(CONFIG), "size": len(CONFIG)}),
    st.just({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(LAYER), "size": len(LAYER)}),
    st.fixed_dictionaries(
        {"mediaType": st.one_of(st.just("application/vnd.oci.image.layer.v1.tar"),
                                st.just("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"), descriptor_values),
         "digest": descriptor_values, "size": descriptor_values},
        optional={"urls": st.one_of(descriptor_values, st.lists(st.sampled_from(["https://example.com/x", "ftp://x", ""]), max_size=2))},
    ),
    descriptor_values,
)


@EXAMPLES
@given(
    config_descriptor=descriptors,
    layers=st.one_of(st.lists(descriptors, max_size=3), descriptor_values),
    subject=st.one_of(st.just(None), descriptors),
    tag=st.sampled_from(["fuzzed", "v1"]),
)
def test_any_manifest_body_is_stored_whole_or_refused_without_writing(client, root, config_descriptor, layers, subject, tag):
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": layers}
    if subject is not None:
        document["subject"] = subject
    body = json.dumps(document).encode()
    response = client.put(f"/v2/prop/manifests/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    _check(response, {"MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", errors.TAG_INVALID.code})
    digest = parse_digest(digest_of(body))
    written = (root / layout.manifest_revision_link("prop/manifests", digest)).exists()
    assert written == (response.status_code == 201)
    if response.status_code != 201:
        assert not (root / layout.blob_data(digest)).exists()
