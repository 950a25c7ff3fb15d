"""The S3 client's failures in the backend contract's terms (`NotFound`, `BackendError`), in one place."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Iterator

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from mirror.upstream.base import BackendError, NotFound

NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchUpload"}
TRANSIENT = (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


def describe(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', '?')} {details.get('Message', '')}".strip()


def error_code(error: ClientError) -> str | None:
    code: str | None = error.response.get("Error", {}).get("Code")
    return code


@contextlib.contextmanager
def failures(key: str) -> Iterator[None]:
    """This client's failures in the backend contract's terms, in one place: an absent key (or bucket, or multipart
    upload) is `NotFound`; any other refusal, and every transport failure, is `BackendError` naming `key`."""
    try:
        yield
    except ClientError as error:
        if error_code(error) in NOT_FOUND_CODES:
            raise NotFound(key) from error
        raise BackendError(f"{key}: {describe(error)}") from error
    except TRANSIENT as error:
        raise BackendError(f"{key}: {error}") from error
