import pytest

from mirror import errors
from mirror.api.ranges import parse_range
from mirror.httpranges import content_range, parse_content_range


def test_no_range_header_means_the_whole_blob():
    assert parse_range(None, 100) is None
    assert parse_range("", 100) is None


def test_closed_range_is_half_open_internally():
    assert parse_range("bytes=0-9", 100) == (0, 10)


def test_open_ended_range_runs_to_the_end():
    assert parse_range("bytes=90-", 100) == (90, 100)


def test_suffix_range_takes_the_last_bytes():
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=-1000", 100) == (0, 100)


def test_range_past_the_end_is_clamped():
    assert parse_range("bytes=50-1000", 100) == (50, 100)


def test_multiple_ranges_are_answered_with_the_whole_blob():
    assert parse_range("bytes=0-1,5-6", 100) is None


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=5-2", "bytes=-0", "items=0-1", "bytes=a-b", "bytes=-"])
def test_unsatisfiable_or_malformed_range_is_range_invalid_with_size(header):
    with pytest.raises(errors.RegistryError) as raised:
        parse_range(header, 100)
    assert raised.value.code is errors.RANGE_NOT_SATISFIABLE
    assert raised.value.status == 416
    assert raised.value.headers["Content-Range"] == "bytes */100"


@pytest.mark.parametrize(
    "header",
    ["bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000, "bytes=" + "1" * 5000 + "-" + "2" * 5000],
    ids=["start", "end", "suffix", "both"],
)
def test_numbers_of_thousands_of_digits_are_answered_not_crashed(header):
    try:
        answer = parse_range(header, 1000)
    except errors.RegistryError as error:
        assert error.code is errors.RANGE_NOT_SATISFIABLE
        assert error.headers["Content-Range"] == "bytes */1000"
    else:
        assert answer is not None and 0 <= answer[0] < answer[1] <= 1000


def test_a_suffix_range_of_an_empty_blob_is_unsatisfiable():
    with pytest.raises(errors.RegistryError) as raised:
        parse_range("bytes=-5", 0)
    assert raised.value.code is errors.RANGE_NOT_SATISFIABLE
    assert raised.value.headers["Content-Range"] == "bytes */0"


# -- Content-Range: one parser for what S3, a remote registry and a peer answer, and what a pushing client sends


@pytest.mark.parametrize(
    "value, expected",
    [
        ("bytes 0-9/100", (0, 9, 100)),  # S3, registry:2, a peer edge
        ("bytes 90-99/*", (90, 99, None)),
        ("0-9", (0, 9, None)),  # docker's PATCH
        ("bytes=5-9", (5, 9, None)),
        (" bytes 3-3/4 ", (3, 3, 4)),
    ],
)
def test_content_range_gives_first_last_and_size(value, expected):
    assert parse_content_range(value) == expected


@pytest.mark.parametrize(
    "value", [None, "", "bytes */100", "bytes 9-0/100", "bytes a-b/c", "bytes 0-9/100/3", "bytes 0-" + "9" * 19, "items 0-1/2"]
)
def test_a_content_range_without_a_readable_span_is_none(value):
    assert parse_content_range(value) is None


def test_content_range_written_is_content_range_read():
    assert parse_content_range(content_range(10, 20, 30)) == (10, 19, 30)
    assert parse_range(f"bytes={10}-{19}", 30) == (10, 20)
