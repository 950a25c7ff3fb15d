"""HTTP Range parsing for blob GETs (RFC 9110 §14): one byte range, or none."""

from __future__ import annotations

import re

from mirror import errors

_SPEC = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
# Any position beyond this is beyond every blob; longer numbers are not converted (Python refuses to turn
# more than 4,300 digits into an int, and a client need not make us try).
_FAR = 10**19


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the half-open ``(start, end)`` a Range header asks of a `size`-byte blob, or None for the whole.

    Several ranges are answered with the whole blob (RFC 9110 lets a server ignore Range). A malformed or
    unsatisfiable range raises RANGE_NOT_SATISFIABLE with ``Content-Range: bytes */size``.
    """
    if header is None or not header.strip():
        return None
    if "," in header and header.lower().lstrip().startswith("bytes"):
        return None
    match = _SPEC.fullmatch(header)
    if not match or (not match.group(1) and not match.group(2)):
        raise _invalid(f"malformed Range header {header[:100]!r}; expected bytes=START-END", size)
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise _invalid(f"a suffix range of {suffix} bytes of a {size}-byte blob cannot be satisfied", size)
        return max(0, size - suffix), size
    start = _number(first)
    end = size if not last else _number(last) + 1
    if last and _number(last) < start:
        raise _invalid(f"range end {last[:30]} is before its start {first[:30]}", size)
    if start >= size:
        raise _invalid(f"range starts at {first[:30]}, but the blob has {size} bytes", size)
    return start, min(end, size)


def suffix_length(header: str | None) -> int:
    """The N of a well-formed single suffix range ``bytes=-N`` (the last N bytes, size unknown yet), else 0."""
    match = _SPEC.fullmatch(header) if header else None
    if match is None or match.group(1) or not match.group(2):
        return 0
    return min(_number(match.group(2)), _FAR)


def _number(digits: str) -> int:
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) < 19 else _FAR


def _invalid(message: str, size: int) -> errors.RegistryError:
    return errors.RegistryError(errors.RANGE_NOT_SATISFIABLE, message, headers={"Content-Range": f"bytes */{size}"})
