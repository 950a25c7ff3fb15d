"""Pushes: blob upload sessions kept in the bucket, and publishing blobs, manifests and tags into its layout."""

from mirror.push.publish import Publisher
from mirror.push.uploads import Uploads, range_headers

__all__ = ["Publisher", "Uploads", "range_headers"]
