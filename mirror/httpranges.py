"""HTTP byte ranges, in one place for every layer (RFC 9110 §14): the ``Range`` a client asks with, and the
``Content-Range`` a server (S3, a remote registry, a peer edge) answers with or a pushing client sends.

Only what the edge needs: one byte range or none. Numbers are cut off before Python is asked to convert them
(it refuses more than 4,300 digits, and a client need not make us try). Nothing here makes an HTTP answer:
the API turns `Unsatisfiable` into RANGE_NOT_SATISFIABLE (``mirror/api/ranges.py``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SPEC = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
# ``bytes START-END/SIZE`` (``/*`` when the size is unknown). A pushing client may send ``START-END`` or
# ``bytes=START-END`` instead (docker's PATCH does), so the unit may be missing or joined with ``=``.
# Offsets of at most 18 digits (an exabyte).
_CONTENT_RANGE = re.compile(r"\s*(?:bytes[ =])?(\d{1,18})-(\d{1,18})(?:/(\d{1,18})|/\*)?\s*")
# Any position beyond this is beyond every blob.
_FAR = 10**19


class Unsatisfiable(ValueError):
    """A Range header that is malformed or cannot be satisfied for a `size`-byte blob."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class ContentRange(NamedTuple):
    """The bytes ``first..last`` (inclusive, as on the wire) of a `size`-byte whole (None: ``/*`` or absent)."""

    first: int
    last: int
    size: int | None


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the half-open ``(start, end)`` a Range header asks of a `size`-byte blob, or None for the whole.

    Several ranges are answered with the whole blob (RFC 9110 lets a server ignore Range). A malformed or
    unsatisfiable range raises `Unsatisfiable`.
    """
    if header is None or not header.strip():
        return None
    if "," in header and header.lower().lstrip().startswith("bytes"):
        return None
    match = _SPEC.fullmatch(header)
    if not match or (not match.group(1) and not match.group(2)):
        raise Unsatisfiable(f"malformed Range header {header[:100]!r}; expected bytes=START-END", size)
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(f"a suffix range of {suffix} bytes of a {size}-byte blob cannot be satisfied", size)
        return max(0, size - suffix), size
    start = _number(first)
    end = size if not last else _number(last) + 1
    if last and _number(last) < start:
        raise Unsatisfiable(f"range end {last[:30]} is before its start {first[:30]}", size)
    if start >= size:
        raise Unsatisfiable(f"range starts at {first[:30]}, but the blob has {size} bytes", size)
    return start, min(end, size)


def suffix_length(header: str | None) -> int:
    """The N of a well-formed single suffix range ``bytes=-N`` (the last N bytes, size unknown yet), else 0."""
    match = _SPEC.fullmatch(header) if header else None
    if match is None or match.group(1) or not match.group(2):
        return 0
    return min(_number(match.group(2)), _FAR)


def parse_content_range(value: str | None) -> ContentRange | None:
    """The range a Content-Range names, or None when it is absent, malformed, ``*/SIZE`` or ends before it starts."""
    match = _CONTENT_RANGE.fullmatch(value) if value else None
    if match is None:
        return None
    first, last, size = match.groups()
    if int(last) < int(first):
        return None
    return ContentRange(int(first), int(last), None if size is None else int(size))


def content_range(start: int, end: int, size: int) -> str:
    """The Content-Range of the half-open bytes ``[start, end)`` of a `size`-byte blob."""
    return f"bytes {start}-{end - 1}/{size}"


def unsatisfied(size: int) -> str:
    """The Content-Range of a 416 answer about a `size`-byte blob."""
    return f"bytes */{size}"


def _number(digits: str) -> int:
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) < 19 else _FAR
