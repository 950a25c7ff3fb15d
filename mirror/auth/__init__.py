"""Access control: who may do what on which repository, decided as the central registry:2 decides it.

`Authorizer` is built once from ``[auth]`` (raising ConfigError for bad files before serving); the API asks it
about each request's `Access` items (from `access.for_repository` or `access.CATALOG`).
"""

from mirror.auth.access import CATALOG, Access, for_repository
from mirror.auth.policy import Authorizer

__all__ = ["CATALOG", "Access", "Authorizer", "for_repository"]
