"""Turn one S3 notification record into the flyer it announces: pure functions, no I/O."""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote_plus

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp"})
# S3 sequencers are hexadecimal strings of varying length. Padded to one width, they compare as
# strings in upload order (for the same key), both in Python and in the database.
SEQUENCER_WIDTH = 64
_HEX = re.compile(r"[0-9A-Fa-f]+")


class NotAFlyerError(Exception):
    """The record is well formed but announces no flyer; it is skipped, not retried."""


class UnsafeKeyError(NotAFlyerError):
    """The key has a `.` or `..` segment: its s3:// URI would resolve to another object."""


class MalformedRecordError(Exception):
    """The record is not a usable S3 notification; the invocation fails and goes to the DLQ."""


@dataclass(frozen=True)
class FlyerUpload:
    """A flyer image uploaded for the event called `event_name`.

    `event_time`, `flyer` and `sequencer` order uploads of the same event: see `version`.
    """

    event_name: str
    flyer: str
    event_time: dt.datetime
    sequencer: str

    @property
    def version(self) -> tuple[dt.datetime, str, str]:
        """The key uploads are ordered by: event time, then the object, then its sequencer.

        Time comes first so that uploads under different keys (Show.png after Show.jpg) order by
        when they happened. For one key the sequencer, which S3 documents as the order of that
        key's events, breaks ties within the same millisecond. Between different keys uploaded in
        the same millisecond the S3 URI decides: arbitrary but stable, so every delivery order
        converges on the same row.
        """
        return (self.event_time, self.flyer, self.sequencer)


def decode_key(raw_key: str) -> str:
    """The object key as stored in S3: notifications URL-encode it (`+` is a space)."""
    return unquote_plus(raw_key, encoding="utf-8", errors="strict")


def event_name_from_key(key: str) -> str:
    """The event's name: the file name without folders and extension, in Unicode NFC.

    NFC because the same name typed on different systems may arrive composed (é) or decomposed
    (e + combining accent), and the catalog compares names byte for byte.
    """
    stem, _extension = posixpath.splitext(posixpath.basename(key))
    return unicodedata.normalize("NFC", stem)


def has_image_extension(key: str) -> bool:
    """True when the key ends with a known image extension, in any letter case."""
    _stem, extension = posixpath.splitext(posixpath.basename(key))
    return extension.lower() in IMAGE_EXTENSIONS


def is_image_content_type(content_type: str) -> bool:
    """True for `image/*` media types, ignoring case and parameters."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("image/") and len(media_type) > len("image/")


def normalise_sequencer(sequencer: str) -> str:
    """Upper-case hex, left-padded with zeros, so that string order is upload order."""
    if not _HEX.fullmatch(sequencer) or len(sequencer) > SEQUENCER_WIDTH:
        raise MalformedRecordError(f"Invalid S3 sequencer: {sequencer!r}")
    return sequencer.upper().rjust(SEQUENCER_WIDTH, "0")


def parse_event_time(event_time: str) -> dt.datetime:
    """The record's ISO-8601 eventTime as a naive UTC datetime (how the database stores it)."""
    try:
        parsed = dt.datetime.fromisoformat(event_time)
    except ValueError:
        raise MalformedRecordError(f"Invalid eventTime: {event_time!r}") from None
    if parsed.tzinfo is None:
        raise MalformedRecordError(f"eventTime has no time zone: {event_time!r}")
    return parsed.astimezone(dt.UTC).replace(tzinfo=None)


def parse_flyer_record(
    *,
    event_type: str,
    bucket: str,
    raw_key: str,
    event_time: str,
    sequencer: str,
    content_type: str | None = None,
) -> FlyerUpload:
    """The flyer announced by one S3 record, from the record's raw fields.

    Raises NotAFlyerError for records to skip (not an object creation, a key with dot
    segments, not an image, a blank name) and MalformedRecordError for records that cannot come
    from S3.
    """
    try:
        key = decode_key(raw_key)
    except UnicodeDecodeError:
        raise MalformedRecordError(f"Object key is not URL-encoded UTF-8: {raw_key!r}") from None
    # Validate what orders uploads before deciding to skip, so that a broken event is never
    # silently dropped.
    upload_time = parse_event_time(event_time)
    upload_sequencer = normalise_sequencer(sequencer)

    if not event_type.startswith("ObjectCreated:"):
        raise NotAFlyerError(f"not an object creation: {event_type}")
    if any(segment in (".", "..") for segment in key.split("/")):
        # S3 keys are literal, but whoever follows s3://bucket/../../Rock.png resolves the dots.
        raise UnsafeKeyError("the key has a '.' or '..' segment")
    if not has_image_extension(key):
        raise NotAFlyerError("the file name has no image extension")
    if content_type is not None and not is_image_content_type(content_type):
        raise NotAFlyerError(f"the content type is not an image: {content_type}")
    event_name = event_name_from_key(key)
    if not event_name.strip():
        raise NotAFlyerError("the file name is blank")

    return FlyerUpload(
        event_name=event_name,
        flyer=f"s3://{bucket}/{key}",
        event_time=upload_time,
        sequencer=upload_sequencer,
    )
