"""One place observes each response (`mirror.api.observed`): the request metrics and the access log read the
same status and byte count from it."""

import asyncio

import pytest

from mirror.api.observed import ObservedResponses, Outcome
from mirror.sendfile import ZEROCOPY_SEND

SCOPE = {"type": "http", "method": "GET", "path": "/v2/"}


async def _answer(scope, receive, send):
    await send({"type": "http.response.start", "status": 206, "headers": [(b"content-length", b"15")]})
    await send({"type": "http.response.body", "body": b"hello", "more_body": True})
    await send({"type": ZEROCOPY_SEND, "file": 0, "offset": 0, "count": 10, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _fail(scope, receive, send):
    raise RuntimeError("the app broke before answering")


def _run(app, observers, headers=()):
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(ObservedResponses(app, observers, headers)(dict(SCOPE), receive, send))
    return sent


def test_every_observer_is_told_the_same_status_and_body_bytes_zero_copy_included():
    seen: list[list[Outcome]] = [[], []]
    _run(_answer, [lambda scope, outcome: seen[0].append(outcome), lambda scope, outcome: seen[1].append(outcome)])
    assert [(outcome.status, outcome.sent) for outcome in seen[0]] == [(206, 15)]
    assert seen[0] == seen[1]


def test_an_app_that_fails_before_answering_is_observed_as_a_500():
    seen = []
    with pytest.raises(RuntimeError):
        _run(_fail, [lambda scope, outcome: seen.append(outcome.status)])
    assert seen == [500]


def test_the_given_headers_are_added_to_the_response():
    sent = _run(_answer, [], headers=[(b"docker-distribution-api-version", b"registry/2.0")])
    assert sent[0]["headers"] == [(b"content-length", b"15"), (b"docker-distribution-api-version", b"registry/2.0")]
