"""Key decoding and record parsing of the flyer function: pure functions, no database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from flyer_records import (
    SEQUENCER_WIDTH,
    FlyerUpload,
    MalformedRecordError,
    NotAFlyerError,
    UnsafeKeyError,
    decode_key,
    event_name_from_key,
    has_image_extension,
    is_image_content_type,
    normalise_sequencer,
    parse_event_time,
    parse_flyer_record,
)
from tests.events import load_event


@pytest.mark.parametrize(
    ("raw_key", "key"),
    [
        ("Rock+in+Rio.jpg", "Rock in Rio.jpg"),
        ("C%2B%2B+Conf.png", "C++ Conf.png"),
        ("Caf%C3%A9+%F0%9F%8E%B8.jpeg", "Café 🎸.jpeg"),
        ("a%2Fb/c%25d.gif", "a/b/c%d.gif"),
        ("plain.webp", "plain.webp"),
    ],
)
def test_decode_key_url_encoded_returns_s3_key(raw_key: str, key: str) -> None:
    assert decode_key(raw_key) == key


def test_decode_key_invalid_utf8_raises() -> None:
    with pytest.raises(UnicodeDecodeError):
        decode_key("caf%E9.jpg")


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("Rock in Rio.jpg", "Rock in Rio"),
        ("flyers/2026/march/Metallica.gif", "Metallica"),
        ("Show.tar.jpg", "Show.tar"),
        ("/leading/slash/Coldplay.png", "Coldplay"),
        ("no-extension", "no-extension"),
    ],
)
def test_event_name_from_key_folders_and_extension_removed(key: str, name: str) -> None:
    assert event_name_from_key(key) == name


def test_event_name_from_key_decomposed_accent_normalised_to_nfc() -> None:
    assert event_name_from_key("Cafe\u0301.jpg") == "Caf\u00e9"


@pytest.mark.parametrize(
    "key", ["a.jpg", "a.JPG", "a.Jpeg", "b/a.png", "a.GIF", "a.webp", "a b.WebP"]
)
def test_has_image_extension_image_any_case_true(key: str) -> None:
    assert has_image_extension(key)


@pytest.mark.parametrize("key", ["a.pdf", "a.jpg.pdf", "a", ".jpg", "jpg", "a.svg", "dir.jpg/a"])
def test_has_image_extension_other_false(key: str) -> None:
    assert not has_image_extension(key)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("image/jpeg", True),
        ("IMAGE/PNG", True),
        ("image/webp; q=1", True),
        ("text/html", False),
        ("application/octet-stream", False),
        ("image/", False),
        ("", False),
    ],
)
def test_is_image_content_type_media_type_checked(content_type: str, expected: bool) -> None:
    assert is_image_content_type(content_type) is expected


def test_normalise_sequencer_shorter_padded_so_string_order_is_upload_order() -> None:
    # "FF" > "0100" as plain strings; S3 says pad the shorter with zeros first.
    assert normalise_sequencer("FF") < normalise_sequencer("0100")
    assert normalise_sequencer("0062a1") == normalise_sequencer("0062A1")
    assert len(normalise_sequencer("1")) == SEQUENCER_WIDTH


@pytest.mark.parametrize("sequencer", ["", "XYZ", "12 34", "F" * (SEQUENCER_WIDTH + 1)])
def test_normalise_sequencer_not_hex_raises(sequencer: str) -> None:
    with pytest.raises(MalformedRecordError):
        normalise_sequencer(sequencer)


def test_parse_event_time_utc_z_naive_utc() -> None:
    assert parse_event_time("2026-03-01T10:00:00.250Z") == dt.datetime(2026, 3, 1, 10, 0, 0, 250000)
    assert parse_event_time("2026-03-01T12:00:00+02:00") == dt.datetime(2026, 3, 1, 10)


@pytest.mark.parametrize("event_time", ["yesterday", "2026-03-01T10:00:00", ""])
def test_parse_event_time_invalid_or_zoneless_raises(event_time: str) -> None:
    with pytest.raises(MalformedRecordError):
        parse_event_time(event_time)


def _fields(**overrides: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_type": "ObjectCreated:Put",
        "bucket": "flyers",
        "raw_key": "posters/Rock+in+Rio.jpg",
        "event_time": "2026-03-01T10:00:00.000Z",
        "sequencer": "0062A1",
        "content_type": None,
    }
    return fields | overrides


def test_parse_flyer_record_image_returns_upload() -> None:
    upload = parse_flyer_record(**_fields())

    assert upload == FlyerUpload(
        event_name="Rock in Rio",
        flyer="s3://flyers/posters/Rock in Rio.jpg",
        event_time=dt.datetime(2026, 3, 1, 10),
        sequencer=normalise_sequencer("0062A1"),
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"event_type": "ObjectRemoved:Delete"},
        {"raw_key": "Rock+in+Rio.pdf"},
        {"raw_key": "posters/"},
        {"raw_key": "posters/+++.png"},
        {"content_type": "text/plain"},
    ],
    ids=["removed", "pdf", "folder", "blank-name", "content-type"],
)
def test_parse_flyer_record_not_a_flyer_raises_skip(overrides: dict[str, str]) -> None:
    with pytest.raises(NotAFlyerError):
        parse_flyer_record(**_fields(**overrides))


def test_parse_flyer_record_image_content_type_accepted() -> None:
    upload = parse_flyer_record(**_fields(content_type="image/jpeg"))
    assert upload.event_name == "Rock in Rio"


@pytest.mark.parametrize(
    "overrides",
    [{"sequencer": "nope"}, {"event_time": "soon"}, {"raw_key": "caf%E9.jpg"}],
    ids=["sequencer", "time", "key"],
)
def test_parse_flyer_record_malformed_raises_even_when_skippable(
    overrides: dict[str, str],
) -> None:
    # A broken record must fail loudly, even if it would have been skipped anyway.
    with pytest.raises(MalformedRecordError):
        parse_flyer_record(**_fields(raw_key="x.pdf") | overrides)


def test_upload_version_later_time_beats_any_sequencer() -> None:
    older = parse_flyer_record(**_fields(sequencer="FFFF"))
    newer = parse_flyer_record(**_fields(event_time="2026-03-01T10:00:00.001Z", sequencer="01"))
    assert older.version < newer.version


def test_parse_flyer_record_sample_event_fields_decoded() -> None:
    [record] = load_event("s3_flyer_accents_emoji")["Records"]
    s3_object = record["s3"]["object"]

    upload = parse_flyer_record(
        event_type=record["eventName"],
        bucket=record["s3"]["bucket"]["name"],
        raw_key=s3_object["key"],
        event_time=record["eventTime"],
        sequencer=s3_object["sequencer"],
    )

    assert upload.event_name == "Café del Mar 🎸"
    assert upload.flyer == "s3://ticketera-flyers-example/Café del Mar 🎸.jpeg"


@pytest.mark.parametrize(
    "raw_key",
    ["../../Rock.png", "flyers/../Rock.png", "./Rock.png", "a/./b/Rock.png", "..%2FRock.png"],
)
def test_parse_flyer_record_key_with_dot_segments_is_refused(raw_key: str) -> None:
    # s3://bucket/../../Rock.png is a literal key in S3, but a URI that resolves elsewhere
    with pytest.raises(UnsafeKeyError):
        parse_flyer_record(
            event_type="ObjectCreated:Put",
            bucket="flyers",
            raw_key=raw_key,
            event_time="2026-11-29T10:00:00.000Z",
            sequencer="0A",
        )


def test_parse_flyer_record_dots_inside_a_name_are_kept() -> None:
    upload = parse_flyer_record(
        event_type="ObjectCreated:Put",
        bucket="flyers",
        raw_key="Mr..Big+v2.0.png",
        event_time="2026-11-29T10:00:00.000Z",
        sequencer="0A",
    )
    assert upload.flyer == "s3://flyers/Mr..Big v2.0.png"
