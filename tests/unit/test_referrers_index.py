"""The referrers index format and list logic (spec.md "Listing Referrers", "Referrers Tag Schema")."""

from __future__ import annotations

import orjson
import pytest

from mirror import layout
from mirror.reference import parse_digest
from mirror.referrers import index

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SUBJECT = "sha256:" + "a" * 64
REFERRER = parse_digest("sha256:" + "b" * 64)


def _manifest(**fields) -> bytes:
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"mediaType": "application/vnd.example.config", "digest": SUBJECT, "size": 2}, "layers": []}
    document.update(fields)
    return orjson.dumps(document)


def _subject() -> dict:
    return {"mediaType": OCI_MANIFEST, "digest": SUBJECT, "size": 10}


def test_artifact_type_is_the_manifests_own_when_set():
    _, entry = index.parse_referrer(_manifest(artifactType="application/x-sig", subject=_subject()), REFERRER)
    assert entry["artifactType"] == "application/x-sig"


def test_artifact_type_falls_back_to_the_config_media_type():
    _, entry = index.parse_referrer(_manifest(subject=_subject()), REFERRER)
    assert entry["artifactType"] == "application/vnd.example.config"


def test_an_index_without_artifact_type_has_none():
    data = orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "subject": _subject()})
    _, entry = index.parse_referrer(data, REFERRER)
    assert "artifactType" not in entry
    assert entry["mediaType"] == OCI_INDEX


def test_descriptor_carries_size_digest_and_every_annotation():
    data = _manifest(subject=_subject(), annotations={"a": "1", "b": "2"})
    subject, entry = index.parse_referrer(data, REFERRER)
    assert subject == parse_digest(SUBJECT)
    assert entry == {
        "mediaType": OCI_MANIFEST,
        "digest": str(REFERRER),
        "size": len(data),
        "artifactType": "application/vnd.example.config",
        "annotations": {"a": "1", "b": "2"},
    }


@pytest.mark.parametrize("subject", [None, "nope", {"digest": "sha256:short"}, {"mediaType": OCI_MANIFEST}])
def test_a_manifest_without_a_valid_subject_is_not_a_referrer(subject):
    fields = {} if subject is None else {"subject": subject}
    with pytest.raises(index.NotAReferrer):
        index.parse_referrer(_manifest(**fields), REFERRER)


def test_an_entry_round_trips_and_must_name_its_own_digest():
    _, entry = index.parse_referrer(_manifest(subject=_subject()), REFERRER)
    stored = index.encode_entry(entry)
    assert index.decode_entry(stored, REFERRER) == entry
    assert index.decode_entry(stored, parse_digest("sha256:" + "c" * 64)) is None
    assert index.decode_entry(b"not json", REFERRER) is None


def test_fallback_tag_truncates_the_encoded_part_to_64_characters():
    assert index.fallback_tag(parse_digest(SUBJECT)) == "sha256-" + "a" * 64
    assert index.fallback_tag(parse_digest("sha512:" + "d" * 128)) == "sha512-" + "d" * 64


def test_fallback_children_are_the_digests_of_an_image_index():
    data = orjson.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": str(REFERRER)}, {"digest": "bad"}, "x"]}
    )
    assert index.fallback_children(data) == [REFERRER]
    assert index.fallback_children(_manifest()) == []


def _entries(count: int, artifact_type: str = "t") -> list[dict]:
    return [{"digest": f"sha256:{i:064x}", "mediaType": OCI_MANIFEST, "size": 1, "artifactType": artifact_type} for i in range(count)]


def test_select_filters_by_any_of_the_artifact_types_and_sorts():
    entries = _entries(2, "a")[::-1] + [{"digest": "sha256:" + "f" * 64, "artifactType": "b"}]
    assert [entry["digest"] for entry in index.select(entries, ["a"])] == [entry["digest"] for entry in _entries(2)]
    assert len(index.select(entries, ["a", "b"])) == 3
    assert len(index.select(entries, [])) == 3


def test_page_stops_at_the_limit_and_names_where_the_next_begins():
    entries = _entries(5)
    first = index.page(entries, None, 2)
    assert first.manifests == entries[:2]
    assert first.next_last == entries[1]["digest"]
    last = index.page(entries, first.next_last, 3)
    assert last.manifests == entries[2:]
    assert last.next_last is None


def test_a_zero_page_is_empty_without_a_next():
    assert index.page(_entries(3), None, 0) == index.Page([], None)


def test_a_page_stays_within_the_manifest_size_limit():
    big = [{**entry, "annotations": {"x": "y" * 1_000_000}} for entry in _entries(6)]
    result = index.page(big, None, 100)
    assert 0 < len(result.manifests) < 6
    assert len(index.image_index(result.manifests)) <= index.PAGE_MAX_BYTES + 1024
    assert result.next_last == result.manifests[-1]["digest"]


def test_entry_names_round_trip_through_the_layout():
    key = layout.referrer_entry("team/app", parse_digest(SUBJECT), REFERRER)
    assert key == f"docker/registry/v2/repositories/team/app/_referrers/sha256/{'a' * 64}/sha256-{'b' * 64}"
    assert layout.referrer_of_entry(key.rsplit("/", 1)[1]) == REFERRER
    assert layout.referrer_of_entry("sha256-xyz") is None
    assert layout.referrer_of_entry("README") is None
