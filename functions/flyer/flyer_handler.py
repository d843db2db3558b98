"""S3 ObjectCreated -> the event's flyer in the MySQL events catalog."""

from __future__ import annotations

from collections import Counter

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from events_db import FlyerOutcome, close_default_events_db, default_events_db
from flyer_config import SERVICE_NAME
from flyer_records import FlyerUpload, NotAFlyerError, UnsafeKeyError, parse_flyer_record

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME)

SKIPPED = "skipped"
_METRIC_NAMES = {
    FlyerOutcome.STORED.value: "FlyerStored",
    FlyerOutcome.UNCHANGED.value: "FlyerUnchanged",
    FlyerOutcome.UNKNOWN_EVENT.value: "FlyerForUnknownEvent",
    SKIPPED: "FlyerSkipped",
}


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, int]:
    """Store each record's image as its event's flyer; return how many records had each outcome.

    Every record is parsed before anything is written, so a malformed event fails whole. A
    database error propagates: the invocation fails and Lambda retries it (then the DLQ). The
    connection is closed whatever happens, so that no idle connection keeps the catalog awake.
    """
    parsed = [_parse(record) for record in event.records]
    outcomes: Counter[str] = Counter()
    try:
        for upload in parsed:
            outcome = SKIPPED if upload is None else _store(upload).value
            outcomes[outcome] += 1
            # Counted as it happens: if a later record fails, the metrics still show what was done.
            metrics.add_metric(name=_METRIC_NAMES[outcome], unit=MetricUnit.Count, value=1)
    finally:
        close_default_events_db()
    return dict(outcomes)


def _parse(record: S3EventRecord) -> FlyerUpload | None:
    s3_object = record.s3.get_object
    # Powertools' per-record key is the raw, URL-encoded one: parse_flyer_record decodes it.
    raw_key = s3_object.key
    try:
        return parse_flyer_record(
            event_type=record.event_name,
            bucket=record.s3.bucket.name,
            raw_key=raw_key,
            event_time=record.event_time,
            sequencer=s3_object.sequencer,
            # S3 notifications carry no content type; events replayed by tools may.
            content_type=s3_object.get("contentType"),
        )
    except UnsafeKeyError as reason:
        # Counted apart from ordinary skips: someone uploads keys crafted to alias other objects.
        metrics.add_metric(name="FlyerKeyRefused", unit=MetricUnit.Count, value=1)
        logger.warning(
            "Refused a flyer key that would alias another object",
            extra={"bucket": record.s3.bucket.name, "key": raw_key, "reason": str(reason)},
        )
        return None
    except NotAFlyerError as reason:
        logger.warning(
            "Skipped a record that is not a flyer",
            extra={"bucket": record.s3.bucket.name, "key": raw_key, "reason": str(reason)},
        )
        return None


def _store(upload: FlyerUpload) -> FlyerOutcome:
    outcome = default_events_db().store_flyer(upload)
    details = {"event_name": upload.event_name, "flyer": upload.flyer}
    if outcome is FlyerOutcome.UNKNOWN_EVENT:
        # Flyers may arrive before their event is created: never insert, flag it instead.
        logger.warning("Flyer for an unknown event; nothing stored", extra=details)
    elif outcome is FlyerOutcome.STORED:
        logger.info("Stored flyer", extra=details)
    else:
        logger.info("Flyer already up to date or superseded by a newer upload", extra=details)
    return outcome
