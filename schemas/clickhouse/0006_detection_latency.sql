-- Migration 0006: detection latency of every flagged event, and its quantiles per hour.
--
-- Definition: the detection latency of a publish event is the time from its publish (events.created_date,
-- as the registry's feed states it) to typostream's verdict on it (events.received_at, stamped when the
-- worker took the event in; detection runs in the same pass, milliseconds later), counted for the events
-- whose analysis raised at least one threat (threat_count > 0). A negative difference (a feed clock
-- ahead of ours) counts as 0. A backfill or the replay of an old file shows as a long latency: that is
-- how long after the publish typostream saw it.
--
-- Quantile states cannot be de-duplicated, so the materialized view keeps one row per event instead
-- (flagged events are a small fraction of all events): AggregatingMergeTree keyed by (registry,
-- event_id) with min() columns, so a replayed or duplicate insert (a re-analysis has a later
-- received_at) collapses to the first analysis. Read with FINAL, or through the view
-- detection_latency_hourly, which computes exact quantiles per hour of analysis:
--
--   SELECT hour, registry, events, p50_ms, p90_ms, p99_ms, max_ms FROM detection_latency_hourly
--
-- Columns:
--   registry     npm | pypi
--   event_id     events.event_id
--   analysed_at  events.received_at of the first analysis
--   latency_ms   analysed_at - created_date in milliseconds (>= 0)
CREATE TABLE IF NOT EXISTS detection_latency
(
    registry    LowCardinality(String),
    event_id    String,
    analysed_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    latency_ms  SimpleAggregateFunction(min, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY (registry, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS detection_latency_mv TO detection_latency AS
SELECT
    registry,
    event_id,
    min(received_at) AS analysed_at,
    min(greatest(toInt64(0), toUnixTimestamp64Milli(received_at) - toUnixTimestamp64Milli(created_date))) AS latency_ms
FROM events
WHERE threat_count > 0
GROUP BY registry, event_id;

INSERT INTO detection_latency
SELECT
    registry,
    event_id,
    min(received_at) AS analysed_at,
    min(greatest(toInt64(0), toUnixTimestamp64Milli(received_at) - toUnixTimestamp64Milli(created_date))) AS latency_ms
FROM events
WHERE threat_count > 0
GROUP BY registry, event_id;

CREATE VIEW IF NOT EXISTS detection_latency_hourly AS
SELECT
    toDateTime(toStartOfHour(analysed_at), 'UTC') AS hour,
    registry,
    count() AS events,
    toInt64(quantileExact(0.5)(latency_ms)) AS p50_ms,
    toInt64(quantileExact(0.9)(latency_ms)) AS p90_ms,
    toInt64(quantileExact(0.99)(latency_ms)) AS p99_ms,
    max(latency_ms) AS max_ms
FROM detection_latency FINAL
GROUP BY hour, registry;
