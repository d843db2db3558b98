-- The events catalog: one row per sports event or concert, created by whoever runs the events.
-- The flyer function only ever UPDATEs `flyer` and the columns that guard it.
--
-- utf8mb4_bin compares names byte for byte (after the function normalises them to NFC), so
-- 'Café' and 'Cafe' or 'ROCK' and 'Rock' are different events. Like every PAD SPACE collation it
-- ignores trailing spaces.
--
-- flyer_event_time, flyer_sequencer and flyer itself record which upload the flyer came from;
-- an upload only replaces the flyer when (eventTime, S3 URI, padded sequencer) is greater, so
-- repeated and out-of-order notifications change nothing.
--
-- Migrations may be interrupted half way (MySQL commits each DDL statement): write them so that
-- running them again completes them.
CREATE TABLE IF NOT EXISTS events (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    ticket_price DECIMAL(10, 2) NOT NULL,
    tickets_available INT UNSIGNED NOT NULL,
    -- s3://<bucket, at most 63>/<key, at most 1024 bytes>
    flyer VARCHAR(1100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    flyer_event_time DATETIME(6) NULL,
    flyer_sequencer VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    PRIMARY KEY (id),
    UNIQUE KEY events_name_unique (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
