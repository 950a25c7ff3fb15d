from mirror import layout
from mirror.reference import Digest

DIGEST = Digest("sha256", "ab" + "c" * 62)


def test_blob_data_is_sharded_by_the_first_two_hex_characters():
    assert layout.blob_data(DIGEST) == f"docker/registry/v2/blobs/sha256/ab/{DIGEST.hex}/data"


def test_tag_current_link():
    assert layout.tag_current_link("team/app", "v1") == "docker/registry/v2/repositories/team/app/_manifests/tags/v1/current/link"


def test_tag_index_link():
    assert (
        layout.tag_index_link("app", "v1", DIGEST)
        == f"docker/registry/v2/repositories/app/_manifests/tags/v1/index/sha256/{DIGEST.hex}/link"
    )


def test_revision_and_layer_links():
    assert layout.manifest_revision_link("app", DIGEST) == f"docker/registry/v2/repositories/app/_manifests/revisions/sha256/{DIGEST.hex}/link"
    assert layout.layer_link("app", DIGEST) == f"docker/registry/v2/repositories/app/_layers/sha256/{DIGEST.hex}/link"


def test_rooted_prefixes_the_root_directory_once():
    assert layout.rooted("", "docker/registry/v2/x") == "docker/registry/v2/x"
    assert layout.rooted("/prod/", "docker/registry/v2/x") == "prod/docker/registry/v2/x"


def test_a_blob_data_key_gives_back_its_digest_and_other_keys_none():
    from mirror.reference import parse_digest

    digest = parse_digest("sha256:" + "ab" * 32)
    assert layout.digest_of_blob_data(layout.blob_data(digest)) == digest
    assert layout.digest_of_blob_data(layout.layer_link("team/app", digest)) is None
    assert layout.digest_of_blob_data(layout.blob_data(digest).replace("/ab/", "/cd/")) is None
    assert layout.digest_of_blob_data("docker/registry/v2/blobs/md5/ab/" + "ab" * 16 + "/data") is None
