"""The Registry v2 / OCI distribution HTTP API."""

from mirror.api.app import create_app

__all__ = ["create_app"]
