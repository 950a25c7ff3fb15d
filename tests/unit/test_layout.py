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


def test_a_blob_key_carries_its_digest_and_the_asking_repository_outside_its_path():
    from mirror.reference import parse_digest

    digest = parse_digest("sha256:" + "ab" * 32)
    key = layout.blob_data(digest, "team/app")
    assert (key.digest, key.repository) == (digest, "team/app")
    assert key == layout.blob_data(digest) == f"docker/registry/v2/blobs/sha256/ab/{digest.hex}/data"
    assert not isinstance(layout.layer_link("team/app", digest), layout.BlobKey)
