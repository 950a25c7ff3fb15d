"""Helpers that start and drive the real components (SeaweedFS, registry:2, skopeo, the edge) on loopback."""
