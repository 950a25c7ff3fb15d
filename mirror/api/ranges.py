"""Range requests as the API answers them: the parser is `mirror.httpranges` (one for every layer); here a
range that cannot be served becomes RANGE_NOT_SATISFIABLE with ``Content-Range: bytes */size``."""

from __future__ import annotations

from mirror import errors, httpranges
from mirror.httpranges import suffix_length

__all__ = ["parse_range", "suffix_length"]


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`httpranges.parse_range`, with an unsatisfiable range raised as the registry error clients expect."""
    try:
        return httpranges.parse_range(header, size)
    except httpranges.Unsatisfiable as error:
        raise errors.RegistryError(
            errors.RANGE_NOT_SATISFIABLE, str(error), headers={"Content-Range": httpranges.unsatisfied(error.size)}
        ) from None
