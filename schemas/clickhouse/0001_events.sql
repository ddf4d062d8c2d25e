-- Migration 0001: table events, as typostream first created it (superseded by 0003, which drops the
-- partition key; applied in order, a new database ends up with 0003's layout).
--
-- typostream.events: one row per analysed publish event (OpenSSF package-feeds record).
--
-- Idempotence (the worker is at-least-once, so batches can be replayed after a crash):
--   * ReplacingMergeTree keyed by event_id (ORDER BY = dedup key): a replayed event collapses to one row
--     when parts merge; the version column received_at keeps the latest analysis.
--   * Reads must use FINAL (or argMax by event_id) so counts are right before merges happen.
--   * non_replicated_deduplication_window lets a plain (non-replicated) MergeTree drop a repeated insert
--     carrying the same insert_deduplication_token; the sink sends one token per batch, derived from the
--     batch's ids. Measured in chDB 4.4 / ClickHouse 26.9: with the window at its default 0 the token is
--     ignored; with 1000 an identical batch+token is dropped, also after the engine is reopened.
--
-- Columns:
--   event_id          deterministic hex id of the publish event (correlation id for threats.event_id)
--   registry          npm | pypi
--   name, version     package name and version as published
--   created_date      publish time from the feed (UTC, ms)
--   artifact_id       feed artifact id ('' when absent)
--   schema_ver        package-feeds schema version, e.g. 1.1.0
--   received_at       when typostream analysed the event (UTC, ms)
--   source_partition  Kafka partition of the input record
--   source_offset     Kafka offset of the input record
--   verdict           clean | suspicious | malicious
--   threat_count      number of threats found for this event
--   max_severity      highest severity among the threats, '' when none
CREATE TABLE IF NOT EXISTS events
(
    event_id         String,
    registry         LowCardinality(String),
    name             String,
    version          String,
    created_date     DateTime64(3, 'UTC'),
    artifact_id      String,
    schema_ver       String,
    received_at      DateTime64(3, 'UTC'),
    source_partition UInt16,
    source_offset    UInt64,
    verdict          LowCardinality(String),
    threat_count     UInt16,
    max_severity     LowCardinality(String)
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(created_date)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;
