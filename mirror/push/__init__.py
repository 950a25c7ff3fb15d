"""Pushes: blob upload sessions kept in the bucket, and publishing blobs, manifests and tags into its layout.

Push talks to the backend's `Writer` and tells the read side what it published through `CacheNotices`; it never
imports the cache.
"""

from mirror.push.notices import CacheNotices
from mirror.push.publish import Publisher
from mirror.push.session import range_headers
from mirror.push.uploads import Uploads

__all__ = ["CacheNotices", "Publisher", "Uploads", "range_headers"]
