"""Helpers that start and drive the real components (SeaweedFS, registry:2, skopeo, the edge) on loopback.

``ports`` free port pairs; ``processes`` start/wait/stop servers; ``seaweed`` the S3 server; ``registry2`` the
reference registry; ``images``/``layers`` offline OCI image layouts; ``skopeo`` push/pull; ``metrics`` Prometheus
scrapes; ``blobs`` raw blob uploads; ``edge`` the mirror itself; ``daemons`` containerd and dockerd.
"""
