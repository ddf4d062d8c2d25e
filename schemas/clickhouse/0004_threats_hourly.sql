-- Migration 0004: threats per hour by registry, severity, technique and threat type.
--
-- threats_hourly holds aggregate states, filled by the materialized view threats_hourly_mv on every
-- insert into threats, and backfilled from the rows threats already holds when the migration runs.
-- Replays cannot inflate it: threats is a ReplacingMergeTree, but a materialized view sees every
-- inserted block, duplicates included (measured in chDB 4.4: a block the source drops by its
-- insert_deduplication_token still reaches the view), so the view stores uniqExact states of the
-- threat ids, never counts: a threat id counted twice is one id. Read with the -Merge combinator:
--
--   SELECT hour, uniqExactMerge(threats) AS threats FROM threats_hourly GROUP BY hour ORDER BY hour
--
-- Merging the states over several hours counts distinct ids over the range, so totals are exact even
-- if a re-detected threat (a replay upstream of the sink gives it a new detected_at) sits in two hours.
--
-- Columns:
--   hour         toStartOfHour(threats.detected_at), UTC
--   registry, severity, technique, threat_type   as in threats
--   threats      uniqExact state of threat_id
--   packages     uniqExact state of the flagged package, 'registry:name'
CREATE TABLE IF NOT EXISTS threats_hourly
(
    hour        DateTime('UTC'),
    registry    LowCardinality(String),
    severity    LowCardinality(String),
    technique   LowCardinality(String),
    threat_type LowCardinality(String),
    threats     AggregateFunction(uniqExact, String),
    packages    AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (hour, registry, severity, technique, threat_type);

CREATE MATERIALIZED VIEW IF NOT EXISTS threats_hourly_mv TO threats_hourly AS
SELECT
    toDateTime(toStartOfHour(detected_at), 'UTC') AS hour,
    registry,
    severity,
    technique,
    threat_type,
    uniqExactState(threat_id) AS threats,
    uniqExactState(concat(registry, ':', name)) AS packages
FROM threats
GROUP BY hour, registry, severity, technique, threat_type;

INSERT INTO threats_hourly
SELECT
    toDateTime(toStartOfHour(detected_at), 'UTC') AS hour,
    registry,
    severity,
    technique,
    threat_type,
    uniqExactState(threat_id) AS threats,
    uniqExactState(concat(registry, ':', name)) AS packages
FROM threats
GROUP BY hour, registry, severity, technique, threat_type;
