"""The S3 backend: the Storage protocol over any S3-compatible object store.

Keys map one to one onto object keys under an optional prefix
(``s3://bucket/prefix`` + ``/`` + key). What the local backend does with
files, this one does with S3's own primitives:

- atomic write: a multipart upload completed on a clean exit, aborted on
  an exception (writer.py); small objects are one PutObject. No partial
  object is ever visible under a final key;
- temporaries: an in-progress (or abandoned) multipart upload. ``list_partials``
  reports each as ``<key>.partial-<8 hex of the upload id>`` — the same
  shape as on disk (``base.is_partial_name``), so prune and a failed run's
  cleanup delete them with ``delete(key)``, which aborts the upload;
- listing: ListObjectsV2, paginated, sorted by key (S3's order);
- ``usage``: None — a bucket has no capacity to report.

Every call goes through retry.call: backoff with jitter on 5xx, throttling
and resets, bounded in time, then one line naming the fix.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ProfileNotFound

from seawall.errors import ConfigError, LockedError, NotFoundError
from seawall.storage.base import (
    PARTIAL_MARKER,
    LocalVolume,
    ObjectInfo,
    Usage,
    check_key,
    is_partial_name,
)
from seawall.storage.s3.reader import ResumingReader
from seawall.storage.s3.retry import RetryPolicy, Translate, call, error_code
from seawall.storage.s3.writer import CHECKSUMS, PART_CHECKSUM, MultipartWriter

T = TypeVar("T")

DEFAULT_PART_SIZE = 8 * 1024 * 1024
#: Parts in flight (ADR 0011 addenda 2 and 4). Four: six parts of 8 MiB and
#: eight of 5 MiB were measured beside it in the same interleaved 2 GiB runs
#: and were not faster (six was slower in 6 of 8 paired rounds), and each
#: part in flight is one more 8 MiB buffer (the whole backup pipeline into
#: S3: 171 MB RSS with 4, 187 MB with 6, 203 MB with 8).
DEFAULT_MAX_IN_FLIGHT = 4
#: aborting a failed upload must not hold up the error by the full retry budget
ABORT_POLICY = RetryPolicy(deadline=10.0)


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (bucket, "some/prefix")."""
    if not url.startswith("s3://"):
        raise ConfigError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
    bucket, _, prefix = url[5:].partition("/")
    prefix = prefix.strip("/")
    if not bucket:
        raise ConfigError(f"S3 URL {url!r} names no bucket (expected s3://bucket/prefix)")
    if prefix:
        check_key(prefix)
    return bucket, prefix


def upload_tag(upload_id: str) -> str:
    """The 8 hex that name an upload in ``<key>.partial-<8 hex>``."""
    return hashlib.sha256(upload_id.encode()).hexdigest()[:8]


#: a page of objects (``list`` is a method name inside the class)
_Objects = list[ObjectInfo]


class S3Storage:
    """Objects in one bucket under one prefix."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        checksums: bool = True,
        part_checksum: str = PART_CHECKSUM,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        extra_put_args: dict[str, str] | None = None,
        page_size: int = 1000,
        addressing_style: str | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        """Credentials left None come from the standard AWS chain (env, profile, IRSA)."""
        self.bucket, self.prefix = parse_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.endpoint_url = endpoint_url
        self.part_size = part_size
        self.max_in_flight = max_in_flight
        self.checksums = checksums
        #: what each part of a multipart upload carries: ``CRC32`` (the default;
        #: the artifact's sha256 is in the manifest) or ``SHA256`` (a
        #: cryptographic per-part check at upload, one more sha256 pass; ADR 0011)
        if part_checksum not in CHECKSUMS:
            raise ValueError(f"part_checksum must be one of {sorted(CHECKSUMS)}")
        self.part_checksum = part_checksum
        self.policy = retry or RetryPolicy()
        self.extra_put_args = dict(extra_put_args or {})  # e.g. ServerSideEncryption
        self.page_size = page_size  # keys per listing request (S3's maximum is 1,000)
        self._translate = Translate(self.url, self.bucket, endpoint_url, self._bucket_missing)
        try:
            session = boto3.session.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=session_token,
                region_name=region,
            )
            region_name = region or session.region_name or "us-east-1"
        except ProfileNotFound as exc:  # AWS_PROFILE names no profile: a config error, not a crash
            raise ConfigError(
                f"AWS_PROFILE: {exc}; define it in ~/.aws/config (or AWS_CONFIG_FILE) or unset it"
            ) from None
        style = addressing_style or ("path" if endpoint_url else "auto")

        def client(**s3: object) -> Any:
            return session.client(
                "s3",
                endpoint_url=endpoint_url,
                verify=ca_bundle,  # None: botocore's default (AWS_CA_BUNDLE, then certifi)
                region_name=region_name,
                config=Config(
                    s3={"addressing_style": style, **s3},
                    retries={"total_max_attempts": 1, "mode": "standard"},  # retry.call retries
                    # ("max_attempts": 1 meant one botocore retry beneath ours)
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    max_pool_connections=max_in_flight + 4,
                    tcp_keepalive=True,
                ),
            )

        self.client: Any = client()
        #: Part and object bodies go through a client that does not hash them for
        #: SigV4 (``UNSIGNED-PAYLOAD``), because every such request carries our own
        #: checksum header (``x-amz-checksum-crc32`` on parts, ``-sha256`` on a
        #: single put): it is signed, and the server refuses a body that does not
        #: match it (BadDigest). Over plain HTTP botocore would otherwise sha256
        #: every part for the signature, one more full pass over the bytes in this
        #: process and in the server (bench/README.md, ADR 0011 addenda 1 and 3).
        #: Everything else (CompleteMultipartUpload's part list…) stays signed.
        self.data_client: Any = client(payload_signing_enabled=False) if checksums else self.client
        self._bucket_checked = False
        #: the server's clock minus ours, from the ``Date`` of its latest answer
        self._skew: float | None = None
        for c in {id(self.client): self.client, id(self.data_client): self.data_client}.values():
            c.meta.events.register("after-call.s3", self._saw_date)

    # -- the server's clock (storage.base.ServerClock)
    def _saw_date(self, http_response: Any = None, **_: Any) -> None:
        date = getattr(http_response, "headers", {}).get("Date") if http_response else None
        if date:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                self._skew = parsedate_to_datetime(date).timestamp() - time.time()

    def server_time(self) -> float:
        """Now by the server's clock: ours plus the skew its latest ``Date`` showed.

        ``LastModified`` is the server's; judging a lease by it against our
        clock would expire live leases on a host that runs fast. Every answer
        carries ``Date`` (one-second resolution; leases are minutes), so the
        call just made (the stat or listing being judged) gives the skew; a
        backend that has not spoken yet asks the bucket once.
        """
        if self._skew is None:
            self._call(
                f"reading the clock of {self.url}",
                lambda: self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1),
            )
        return time.time() + (self._skew or 0.0)

    # -- helpers
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return call(self.policy, what, fn, self._translate)

    def _abort_call(self, what: str, fn: Callable[[], T]) -> T:
        # never longer than the calls themselves may take (a mirror's short deadline)
        policy = ABORT_POLICY if ABORT_POLICY.deadline <= self.policy.deadline else self.policy
        return call(policy, what, fn, self._translate)

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _list_prefix(self, prefix: str) -> str:
        """S3 prefix covering ``prefix`` itself and everything below it."""
        if not prefix:
            return f"{self.prefix}/" if self.prefix else ""
        return self._full(prefix.rstrip("/"))

    @staticmethod
    def _under(rel: str, prefix: str) -> bool:
        return not prefix or rel == prefix or rel.startswith(prefix.rstrip("/") + "/")

    def describe(self) -> str:
        return self.url

    def local_volume(self) -> LocalVolume | None:
        """A bucket is no directory: flock, inotify and the lean local paths do not apply."""
        return None

    @contextmanager
    def lease(
        self, key: str, *, timeout: float, command: str, lease_seconds: float = 300.0
    ) -> Iterator[None]:
        """The :class:`~seawall.storage.base.Leasing` capability: an S3Lease on ``key``.

        A holder that lost its lease (renewal refused: another run took over
        a lease it let expire) is told at release: the run fails with
        LockedError rather than report a success another run may have raced.
        """
        from seawall.storage.s3.lease import S3Lease

        held = S3Lease(self, key, lease_seconds=lease_seconds, command=command)
        held.acquire(timeout)
        try:
            yield
        except BaseException:
            # The run's own error is the one to report: with the server gone, the
            # unlock fails too (after its retries) and used to replace it ("cannot
            # reach S3 for unlock …" instead of what the run was doing). A lease
            # left behind runs out by itself.
            with contextlib.suppress(Exception):
                held.release()
            raise
        held.release()
        if held.lost.is_set():
            raise LockedError(
                f"lost the lease on {self.url}/{key} while running (renewal refused): "
                "another run took it over; check the result of both runs"
            )

    # -- writes
    @contextmanager
    def open_atomic_write(self, key: str) -> Iterator[BinaryIO]:
        writer = MultipartWriter(
            self.client,
            self.bucket,
            self._full(key),
            self._call,
            self._abort_call,
            part_size=self.part_size,
            max_in_flight=self.max_in_flight,
            checksums=self.checksums,
            part_checksum=self.part_checksum,
            extra=self.extra_put_args,
            data_client=self.data_client,
        )
        try:
            yield cast(BinaryIO, writer)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_atomic_write(key) as fh:
            fh.write(data)

    # -- reads
    def _get(self, full: str, start: int, etag: str | None) -> dict[str, Any]:
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if start:
            kw["Range"] = f"bytes={start}-"
        if etag:
            kw["IfMatch"] = etag
        return cast(dict[str, Any], self._call(full, lambda: self.client.get_object(**kw)))

    def open_read(self, key: str) -> BinaryIO:
        full = self._full(key)

        def open_at(start: int, etag: str | None) -> dict[str, Any]:
            return self._get(full, start, etag)

        try:
            return cast(BinaryIO, io.BufferedReader(ResumingReader(open_at, key, self.policy)))
        except NotFoundError:
            raise NotFoundError(f"{key} not found in {self.url}") from None

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as fh:
            return fh.read()

    def _head(self, key: str) -> dict[str, Any] | None:
        full = self._full(key)
        try:
            return cast(
                dict[str, Any],
                self._call(key, lambda: self.client.head_object(Bucket=self.bucket, Key=full)),
            )
        except NotFoundError:
            # HEAD answers a bare 404 for a missing bucket too: tell them apart once
            if not self._bucket_checked:
                self.check_bucket()
            return None

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def stat(self, key: str) -> ObjectInfo:
        head = self._head(key)
        if head is None:
            raise NotFoundError(f"{key} not found in {self.url}")
        return ObjectInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    # -- deletes
    def delete(self, key: str) -> None:
        if is_partial_name(key):
            self._abort_partial(key)
            return
        full = self._full(key)
        self._call(
            f"deleting {key}", lambda: self.client.delete_object(Bucket=self.bucket, Key=full)
        )

    def _abort_partial(self, key: str) -> None:
        final, _, tag = key.rpartition(PARTIAL_MARKER)
        full = self._full(final)
        for upload in self._uploads(full):
            if upload["Key"] == full and upload_tag(upload["UploadId"]) == tag:
                upload_id = str(upload["UploadId"])
                with contextlib.suppress(NotFoundError):  # aborted meanwhile: idempotent
                    self._call(
                        f"aborting the upload of {final}",
                        functools.partial(
                            self.client.abort_multipart_upload,
                            Bucket=self.bucket,
                            Key=full,
                            UploadId=upload_id,
                        ),
                    )

    def delete_tree(self, prefix: str) -> None:
        """Every object and temporary under ``prefix`` (after its manifest is gone)."""
        for info, _partial in list(self.walk(prefix)):
            self.delete(info.key)

    # -- listing
    def _objects(self, s3_prefix: str, delimiter: str = "") -> Iterator[dict[str, Any]]:
        """ListObjectsV2 pages: each Contents entry and each CommonPrefixes entry."""
        token: str | None = None
        while True:
            kw: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": s3_prefix,
                "MaxKeys": self.page_size,
            }
            if delimiter:
                kw["Delimiter"] = delimiter
            if token:
                kw["ContinuationToken"] = token
            page = self._call(
                f"listing {s3_prefix or '/'}", functools.partial(self.client.list_objects_v2, **kw)
            )
            yield from page.get("Contents", [])
            yield from page.get("CommonPrefixes", [])
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def _uploads(self, s3_prefix: str) -> Iterator[dict[str, Any]]:
        """ListMultipartUploads pages: every in-progress upload under ``s3_prefix``.

        A truncated page is followed with whichever markers the server gave:
        AWS pages by key (``NextKeyMarker`` + ``NextUploadIdMarker``),
        SeaweedFS by upload id alone (``NextUploadIdMarker``, no key marker).
        Stopping when the key marker was missing dropped every upload after
        the first 1,000 there, so prune and sync never cleaned them. A server
        whose markers do not move on is not followed in a loop.
        """
        markers: dict[str, str] = {}
        while True:
            kw: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": s3_prefix,
                "MaxUploads": self.page_size,
                **markers,
            }
            page = self._call(
                f"listing uploads under {s3_prefix or '/'}",
                functools.partial(self.client.list_multipart_uploads, **kw),
            )
            yield from page.get("Uploads", [])
            if not page.get("IsTruncated"):
                return
            following = {
                name: str(page[f"Next{name}"])
                for name in ("KeyMarker", "UploadIdMarker")
                if page.get(f"Next{name}")
            }
            if not following or following == markers:
                return
            markers = following

    def _walk_objects(self, prefix: str, exclude: tuple[str, ...]) -> Iterator[ObjectInfo]:
        """Objects under ``prefix``; excluded sub-trees are never listed (one
        delimiter listing per level that leads to an excluded key)."""
        here = f"{prefix.rstrip('/')}/" if prefix else ""
        if not any(e.startswith(here) for e in exclude):
            for obj in self._objects(self._list_prefix(prefix)):
                rel = self._rel(obj["Key"])
                if self._under(rel, prefix) and not is_partial_name(rel):
                    yield ObjectInfo(rel, int(obj["Size"]), obj["LastModified"].timestamp())
            return
        s3_here = f"{self.prefix}/{here}" if self.prefix else here
        for entry in self._objects(s3_here, delimiter="/"):
            if "Prefix" in entry:
                sub = self._rel(entry["Prefix"]).rstrip("/")
                if sub not in exclude:
                    yield from self._walk_objects(sub, exclude)
            else:
                rel = self._rel(entry["Key"])
                yield ObjectInfo(rel, int(entry["Size"]), entry["LastModified"].timestamp())

    def list_partials(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for upload in self._uploads(self._list_prefix(prefix)):
            rel = self._rel(upload["Key"])
            if self._under(rel, prefix):
                name = f"{rel}{PARTIAL_MARKER}{upload_tag(upload['UploadId'])}"
                yield ObjectInfo(name, 0, upload["Initiated"].timestamp())

    def walk(
        self, prefix: str = "", exclude: tuple[str, ...] = ()
    ) -> Iterator[tuple[ObjectInfo, bool]]:
        for info in self._walk_objects(prefix, exclude):
            yield info, False
        for info in self.list_partials(prefix):
            if not any(self._under(info.key, e) for e in exclude):
                yield info, True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self._walk_objects(prefix, ())

    def list_pages_after(self, start_after: str = "") -> Iterator[tuple[str, _Objects]]:
        """The whole repository's objects with keys after ``start_after``, one
        ListObjectsV2 page at a time, in key order, fetched as iterated: (the
        last key the page covered, "" for an empty page; its complete objects).

        Why pages and ``StartAfter``: the exporter's incremental listing
        (exporter/listing.py) skips key ranges it already knows and must know
        which range each request covered (a page is authoritative for the keys
        between its first and last: what it does not name there is gone).
        """
        s3_prefix = self._list_prefix("")
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": s3_prefix}
            kw["MaxKeys"] = self.page_size
            if token:
                kw["ContinuationToken"] = token
            elif start_after:
                kw["StartAfter"] = s3_prefix + start_after
            page = self._call(
                f"listing {s3_prefix or '/'}", functools.partial(self.client.list_objects_v2, **kw)
            )
            contents = page.get("Contents", [])
            last = self._rel(contents[-1]["Key"]) if contents else ""
            yield (
                last,
                [
                    ObjectInfo(rel, int(o["Size"]), o["LastModified"].timestamp())
                    for o in contents
                    if not is_partial_name(rel := self._rel(o["Key"]))
                ],
            )
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def usage(self) -> Usage | None:
        return None

    def check_bucket(self) -> None:
        """Fail early with one line when the bucket is missing or the key cannot see it."""
        try:
            self._call("the bucket", lambda: self.client.head_bucket(Bucket=self.bucket))
        except NotFoundError:
            raise self._translate.no_bucket() from None
        self._bucket_checked = True

    def _bucket_missing(self) -> bool:
        """One HEAD on the bucket, no retries: whether it answers 404."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            return error_code(exc) in ("404", "NoSuchBucket", "NotFound")
        except Exception:
            return False
        return False
