"""The local disk cache and the fill engine: everything between the API and the storage backend."""

from mirror.cache.content import BlobReader, CachedBlob, FillingBlob
from mirror.cache.edge import EdgeCache, Manifest
from mirror.cache.fill import FillFailed

__all__ = ["BlobReader", "CachedBlob", "EdgeCache", "FillFailed", "FillingBlob", "Manifest"]
