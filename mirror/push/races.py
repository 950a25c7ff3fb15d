"""Requests racing on one upload session: what a request answers when something of the session vanished under it
(`moved`), and how a finish waits for another request that is assembling the same session's data
(`completed_elsewhere`). Both read the stored state again; neither trusts what the racing request saw."""

from __future__ import annotations

import asyncio

from mirror.domain import OutOfStep, Problem, Unavailable, Unknown
from mirror.push.session import SessionStore, UploadState, unknown_upload
from mirror.upstream import NotFound

# Pauses (seconds) while another request assembles a session's data, before a finish racing it answers 503.
FINISHER_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 2.0)


async def moved(sessions: SessionStore, name: str, state: UploadState) -> Problem:
    """Something of the session vanished while this request ran: what became of the session?

    Gone (finished or cancelled by another request): BLOB_UPLOAD_UNKNOWN. Moved on (another request's chunk
    counted first): RANGE_INVALID with its new offset, so the client can ask and resend. Neither, with no
    multipart upload in flight: an object the saved state names is gone (a request that finished or cancelled
    the session deleted it while this one saved a state, or the backend lost it). Such a session can never
    complete, so it is dropped and answered as unknown: the client starts the upload again instead of retrying
    one that cannot succeed. With a multipart upload in flight, a finish may be completing it right now, so
    the session is left alone and the answer is a retryable 503."""
    try:
        current = await sessions.status(name, state.id)
    except Problem as error:
        return error
    if (current.nonce, current.completed) != (state.nonce, state.completed):
        return OutOfStep(
            f"upload {state.id} changed while this request ran (another request on it); it holds {current.offset} bytes",
            name, current.id, current.offset,
        )
    if current.multipart_id is not None:
        return Unavailable(f"upload {state.id}: its multipart upload is gone; retry shortly")
    await sessions.drop(name, current)
    return unknown_upload(
        state.id, f"upload {state.id} lost part of its data (another request finished or cancelled it); start the upload again"
    )


async def completed_elsewhere(sessions: SessionStore, name: str, state: UploadState) -> None:
    """The multipart upload is gone: another request (or one that crashed) completed it, or it was cancelled.

    A request still assembling the data is waited for a few seconds (its finish then stands for this one too)
    before this one gives up with a retryable 503."""
    for pause in (*FINISHER_WAITS, None):
        try:
            current = await sessions.status(name, state.id)
        except Unknown as error:
            if error.what == "upload":
                raise NotFound(state.id) from None  # finished or cancelled meanwhile: the caller checks which
            raise
        if current.nonce != state.nonce:
            raise await moved(sessions, name, state)
        if current.completed or await sessions.staged_size(name, state) == state.offset:
            break
        if pause is None:
            raise Unavailable(f"upload {state.id} is being finished by another request; retry shortly")
        await asyncio.sleep(pause)
    if not current.completed:
        current.multipart_id, current.completed = None, True  # an edge died right after completing it
        await sessions.save(name, current)
    state.multipart_id = None
    state.completed = True
