"""S3 backend (aioboto3): the registry:2 layout in a bucket, e.g. Storj DCS through its S3 gateway.

Path-style addressing (Storj's examples use it), a connection pool sized for the fill parallelism, and
bodies streamed in the pieces aiohttp received (up to 256 KiB) rather than aiobotocore's default 1 KiB.
"""

from __future__ import annotations

import builtins
import contextlib
import tempfile
from typing import Any, AsyncIterator, BinaryIO

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

from mirror import layout
from mirror.config import S3Config
from mirror.httpranges import parse_content_range
from mirror.upstream import s3body
from mirror.upstream.s3failures import TRANSIENT, describe, error_code, failures
from mirror.upstream.partbody import FilePart
from mirror.upstream.base import BackendError, Listing, MultipartUpload, ObjectInfo, TooLarge

# CopyObject copies up to 5 GiB server-side; larger objects are streamed through us in parts.
COPY_OBJECT_LIMIT = 5 * 1024**3
STREAMED_COPY_PART = 64 * 1024**2


class S3Upstream:
    name = "s3"

    def __init__(self, settings: S3Config, pool_size: int) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self._pool_size = pool_size
        self._session = aioboto3.Session()
        self._exit_stack = contextlib.AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        config = AioConfig(
            max_pool_connections=self._pool_size,
            # Over TLS, parts go UNSIGNED-PAYLOAD: no sha256 pass over each uploaded byte (a sixth of a push's CPU);
            # the edge checks each pushed blob's digest itself and TLS guards the bytes on their way to the bucket.
            # Over plain HTTP the payload's sha256 in the signature is the only check the bucket makes: kept.
            s3={"addressing_style": "path", "payload_signing_enabled": not self._over_tls()},
            # Fills retry parts themselves, and a stale tag is better served now than after long backoffs.
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=3,
            read_timeout=60,
            # botocore ≥ 1.36 adds a CRC32 to every upload and checks it on downloads by default: ~9 % of the
            # edge's CPU on a push, a header some S3-compatible gateways refuse, and redundant here — every blob
            # is verified against its sha256 digest by the edge itself.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client = await self._exit_stack.enter_async_context(
            self._session.client(
                "s3",
                region_name=self.settings.region,
                endpoint_url=self.settings.regionendpoint or None,
                aws_access_key_id=self.settings.accesskey or None,
                aws_secret_access_key=self.settings.secretkey or None,
                config=config,
            )
        )

    async def close(self) -> None:
        await self._exit_stack.aclose()

    def _over_tls(self) -> bool:
        return not self.settings.regionendpoint or self.settings.regionendpoint.lower().startswith("https://")

    def _key(self, key: str) -> str:
        return layout.rooted(self.settings.rootdirectory, key)

    async def probe(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            raise BackendError(f"bucket {self.bucket}: {describe(error)}") from error
        except TRANSIENT as error:
            raise BackendError(f"bucket {self.bucket}: {error}") from error

    async def stat(self, key: str) -> ObjectInfo:
        with failures(key):
            response = await self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        return ObjectInfo(size=int(response["ContentLength"]))

    async def read(self, key: str, max_size: int) -> bytes:
        with failures(key):
            response = await self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            body = response["Body"]
            try:
                if int(response["ContentLength"]) > max_size:
                    raise TooLarge(f"{key} is larger than {max_size} bytes")
                data: bytes = await body.read()
                return data
            finally:
                body.close()

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        with failures(key):
            response = await self._client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end - 1}"
            )
            async for chunk in self._drain(response["Body"], key, end - start):
                yield chunk

    async def _get_unless_empty(self, key: str, byte_range: str) -> dict[str, Any] | None:
        """A ranged GET; None for an empty object (no range of it can be satisfied: S3 answers InvalidRange)."""
        with failures(key):
            try:
                response: dict[str, Any] = await self._client.get_object(Bucket=self.bucket, Key=self._key(key), Range=byte_range)
                return response
            except ClientError as error:
                if error_code(error) != "InvalidRange":
                    raise
                return None

    async def read_first(self, key: str, length: int) -> tuple[int, AsyncIterator[bytes]]:
        response = await self._get_unless_empty(key, f"bytes=0-{length - 1}")
        if response is None:
            return 0, _empty()
        served = parse_content_range(response.get("ContentRange"))
        size = served.size if served and served.size is not None else int(response["ContentLength"])
        return size, self._drain(response["Body"], key, int(response["ContentLength"]))

    async def read_last(self, key: str, length: int) -> tuple[int, int, AsyncIterator[bytes]]:
        """One ranged GET ``bytes=-length``: S3 answers the last bytes (the whole object if it is shorter) with
        ``Content-Range: bytes START-END/SIZE``."""
        response = await self._get_unless_empty(key, f"bytes=-{length}")
        if response is None:
            return 0, 0, _empty()
        received = int(response["ContentLength"])
        served = parse_content_range(response.get("ContentRange"))
        if served and served.size is not None:
            size, start = served.size, served.first
        else:  # a 200 with the whole object (a server that ignores Range)
            size, start = received, 0
        if start + received != size:
            response["Body"].close()
            raise BackendError(f"{key}: suffix of {length} bytes answered {response.get('ContentRange')!r}, {received} bytes")
        return size, start, self._drain(response["Body"], key, received)

    async def _drain(self, body: Any, key: str, expected: int) -> AsyncIterator[bytes]:
        """The body's bytes as aiohttp received them (`s3body.pieces`: no joining copies). The length is checked
        here, as aiobotocore's own read would."""
        received = 0
        try:
            async with contextlib.aclosing(s3body.pieces(body)) as chunks:
                async for chunk in chunks:
                    received += len(chunk)
                    yield chunk
        except TRANSIENT as error:
            raise BackendError(f"{key}: {error}") from error
        finally:
            body.close()
        if received != expected:
            raise BackendError(f"{key}: got {received} of {expected} bytes")

    async def list(self, directory: str) -> Listing:
        prefix = self._key(directory).rstrip("/") + "/"
        listing = Listing()
        with failures(directory):
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    listing.directories.append(common["Prefix"][len(prefix):].rstrip("/"))
                for item in page.get("Contents", []):
                    listing.files.append(item["Key"][len(prefix):])
        return listing

    # -- writes ---------------------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        await self._write(self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data), key)

    async def delete(self, key: str) -> None:
        await self._write(self._client.delete_object(Bucket=self.bucket, Key=self._key(key)), key)

    async def delete_tree(self, directory: str) -> None:
        prefix = self._key(directory).rstrip("/") + "/"
        with failures(directory):
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:  # a page holds at most 1000 keys, DeleteObjects' limit
                    response = await self._client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                    )
                    failed = response.get("Errors", [])
                    if failed:
                        raise BackendError(f"{directory}: could not delete {failed[0].get('Key')}: {failed[0].get('Message')}")

    async def copy(self, source: str, destination: str, size: int) -> None:
        if size <= COPY_OBJECT_LIMIT:
            source_ref = {"Bucket": self.bucket, "Key": self._key(source)}
            await self._write(
                self._client.copy_object(Bucket=self.bucket, Key=self._key(destination), CopySource=source_ref), destination
            )
            return
        # Too large for CopyObject, and UploadPartCopy is what Storj lacks: stream the parts through this process,
        # each spooled to an anonymous temporary file (TMPDIR) so memory holds a read chunk, not a part.
        upload_id = await self.start_multipart(destination)
        parts: builtins.list[tuple[int, str]] = []
        try:
            for number, start in enumerate(range(0, size, STREAMED_COPY_PART), start=1):
                end = min(size, start + STREAMED_COPY_PART)
                with tempfile.TemporaryFile() as spool:
                    async for chunk in self.read_range(source, start, end):
                        spool.write(chunk)
                    spool.seek(0)
                    parts.append((number, await self.put_part(destination, upload_id, number, spool, end - start)))
            await self.complete_multipart(destination, upload_id, parts)
        except BaseException:
            await self.abort_multipart(destination, upload_id)
            raise

    async def start_multipart(self, key: str) -> str:
        response = await self._write(self._client.create_multipart_upload(Bucket=self.bucket, Key=self._key(key)), key)
        return str(response["UploadId"])

    async def put_part(self, key: str, upload_id: str, number: int, body: BinaryIO | bytes, size: int) -> str:
        payload = body if isinstance(body, bytes) else FilePart(body, size)  # read in 1 MiB pieces, not 64 KiB
        response = await self._write(
            self._client.upload_part(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id, PartNumber=number, Body=payload, ContentLength=size
            ),
            key,
        )
        return str(response["ETag"])

    async def list_parts(self, key: str, upload_id: str) -> dict[int, str]:
        held: dict[int, str] = {}
        with failures(key):
            paginator = self._client.get_paginator("list_parts")
            async for page in paginator.paginate(Bucket=self.bucket, Key=self._key(key), UploadId=upload_id):
                for part in page.get("Parts", []):
                    held[int(part["PartNumber"])] = str(part["ETag"])
        return held

    async def multipart_uploads(self, prefix: str) -> builtins.list[MultipartUpload]:
        rooted_prefix = self._key(prefix)
        root = self._key("")
        found: builtins.list[MultipartUpload] = []
        with failures(prefix):
            paginator = self._client.get_paginator("list_multipart_uploads")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=rooted_prefix):
                for upload in page.get("Uploads", []):
                    key = str(upload["Key"])[len(root):]
                    found.append(MultipartUpload(key, str(upload["UploadId"]), upload["Initiated"].timestamp()))
        return found

    async def complete_multipart(self, key: str, upload_id: str, parts: builtins.list[tuple[int, str]]) -> None:
        await self._write(
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": number, "ETag": etag} for number, etag in parts]},
            ),
            key,
        )

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            await self._client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(key), UploadId=upload_id)
        except (ClientError, *TRANSIENT):
            pass

    @staticmethod
    async def _write(awaitable: Any, key: str) -> Any:
        with failures(key):
            return await awaitable


async def _empty() -> AsyncIterator[bytes]:
    """The body of an empty object."""
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:
        yield chunk
