"""Differential testing against registry:2: request sequences, the answers' comparable parts, and the runner.

A sequence is a list of `Step`s. Each step is one request template; it is sent to every server of a `Lane`
(registry:2 first, then the edge), each with its own `Context` (the upload URLs that server handed out). What is
compared of an answer is `Answer`: status, error codes, the headers that carry meaning (digest, length, range,
content type, the shape of Location), and the body's digest or, for listings, its JSON.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

_UPLOAD_ID = re.compile(r"/blobs/uploads/[^/?]+")
_KEPT_HEADERS = ("docker-content-digest", "content-range", "range", "accept-ranges")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Context:
    """One server's side of a sequence: the latest Location of each upload it started, by label."""

    base_url: str
    uploads: dict[str, str] = field(default_factory=dict)

    def absolute(self, location: str) -> str:
        return urljoin(self.base_url + "/", location)


@dataclass(frozen=True)
class Answer:
    status: int
    codes: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    body: Any

    def describe(self) -> str:
        return f"{self.status} codes={list(self.codes)} headers={dict(self.headers)} body={self.body!r}"[:600]


def location_shape(location: str | None) -> str | None:
    """A Location's path with the upload id replaced: ``/v2/<name>/blobs/uploads/<id>`` or ``/v2/<name>/blobs/<digest>``.
    Its host (absolute or relative) and query (registry:2's signed ``_state``) are the server's own business."""
    if location is None:
        return None
    return _UPLOAD_ID.sub("/blobs/uploads/<id>", urlsplit(location).path)


def _codes(response: httpx.Response) -> tuple[str, ...]:
    if response.request.method == "HEAD":
        return ()  # no body; the status is compared
    if response.status_code < 400 or "json" not in response.headers.get("content-type", ""):
        return ()
    try:
        errors = orjson.loads(response.content).get("errors") or []
        return tuple(sorted(str(error.get("code")) for error in errors))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return ("<not an error body>",)


def answer_of(response: httpx.Response, kind: str) -> Answer:
    """The parts of `response` both servers must agree on, for a step of `kind`."""
    headers: dict[str, str] = {}
    body: Any = None
    if response.status_code < 300:
        headers = {key: response.headers[key] for key in _KEPT_HEADERS if key in response.headers}
        if "location" in response.headers:
            headers["location"] = location_shape(response.headers["location"]) or ""
        if kind in ("get_blob", "head_blob", "get_manifest", "head_manifest"):
            headers["content-length"] = response.headers.get("content-length", "<none>")
        if kind in ("get_manifest", "head_manifest"):
            headers["content-type"] = response.headers.get("content-type", "<none>").split(";")[0].strip()
        if kind in ("tags", "tags_paged"):
            body = orjson.loads(response.content) if response.content else None
            headers["link"] = "link" if "link" in response.headers else ""
        elif response.request.method == "GET" and response.content:
            body = digest_of(response.content)
    return Answer(response.status_code, _codes(response), tuple(sorted(headers.items())), body)


Request = Callable[[httpx.Client, Context], "httpx.Response | None"]


@dataclass(frozen=True)
class Step:
    """One request of a sequence: `kind` names what it does (the allowlist matches on it), `text` shows it."""

    kind: str
    text: str
    send: Request
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


def remember_upload(ctx: Context, label: str, response: httpx.Response) -> None:
    if response.status_code == 202 and "location" in response.headers:
        ctx.uploads[label] = ctx.absolute(response.headers["location"])


def with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


@dataclass
class Divergence:
    seed: int
    index: int
    steps: list[Step]
    registry: Answer
    edge: Answer
    where: str

    def report(self) -> str:
        lines = [f"seed {self.seed}, sequence {self.index}: {self.where} differs at step {len(self.steps)}:"]
        lines += [f"  {number:2}. {step.text}" for number, step in enumerate(self.steps, 1)]
        lines += [f"  registry:2 -> {self.registry.describe()}", f"  edge       -> {self.edge.describe()}"]
        return "\n".join(lines)


@dataclass(frozen=True)
class Allowed:
    """An intended difference: `matches(step, edge, registry)`; `diverges` when the two states differ afterwards."""

    name: str
    reason: str
    matches: Callable[[Step, Answer, Answer], bool]
    diverges: bool = False


def _answer(step: Step, client: httpx.Client, ctx: Context) -> Answer | None:
    """The comparable answer to `step`; a broken response (the server closed mid-body) is an answer too."""
    try:
        response = step.send(client, ctx)
    except httpx.TransportError as error:
        return Answer(0, (), (), f"transport error: {type(error).__name__}")
    return None if response is None else answer_of(response, step.kind)


def lockstep(
    seed: int, index: int, steps: list[Step], clients: tuple[httpx.Client, httpx.Client],
    allowlist: list[Allowed], hits: dict[str, int], where: str,
) -> tuple[Divergence | None, bool]:
    """Send each step to registry:2 then to the edge: the first difference no allowlist entry covers, if any, and
    whether the two states are still alike. An allowed difference that leaves the states apart ends the sequence
    (what follows would only repeat it)."""
    registry, edge = clients
    contexts = (Context(str(registry.base_url).rstrip("/")), Context(str(edge.base_url).rstrip("/")))
    for number, step in enumerate(steps):
        answers = [_answer(step, client, ctx) for client, ctx in zip(clients, contexts)]
        if any(answer is None for answer in answers):
            if all(answer is None for answer in answers):
                continue  # the step needs an upload neither server started
            raise AssertionError(f"seed {seed} sequence {index}: step {step.text!r} ran on one server only")
        theirs, ours = answers
        assert theirs is not None and ours is not None
        if theirs == ours:
            continue
        entry = next((allowed for allowed in allowlist if allowed.matches(step, ours, theirs)), None)
        if entry is None:
            return Divergence(seed, index, steps[: number + 1], theirs, ours, where), False
        hits[entry.name] = hits.get(entry.name, 0) + 1
        if entry.diverges:
            return None, False
    return None, True
