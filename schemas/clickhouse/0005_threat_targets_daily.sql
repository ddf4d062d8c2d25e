-- Migration 0005: the most-targeted packages, per day: which popular packages squats imitate.
--
-- Filled by threat_targets_daily_mv on every insert into threats, and backfilled from threats: the
-- threats whose target is a package (typosquat, dependency_confusion; a malicious_package threat's
-- target is an advisory id, a suspicious_pattern's a pattern id). Like threats_hourly it stores
-- uniqExact states, so replays and duplicate blocks do not inflate it. The top targets of a period:
--
--   SELECT registry, target, uniqExactMerge(squats) AS squats, uniqExactMerge(threats) AS threats
--   FROM threat_targets_daily WHERE day >= today() - 6
--   GROUP BY registry, target ORDER BY squats DESC, threats DESC, target LIMIT 10
--
-- Columns:
--   day          toDate(threats.detected_at), UTC
--   registry     npm | pypi
--   target       the popular package imitated
--   squats       uniqExact state of the imitating package names
--   threats      uniqExact state of threat_id
--   max_risk     highest risk_score seen
CREATE TABLE IF NOT EXISTS threat_targets_daily
(
    day      Date,
    registry LowCardinality(String),
    target   String,
    squats   AggregateFunction(uniqExact, String),
    threats  AggregateFunction(uniqExact, String),
    max_risk SimpleAggregateFunction(max, UInt8)
)
ENGINE = AggregatingMergeTree
ORDER BY (day, registry, target);

CREATE MATERIALIZED VIEW IF NOT EXISTS threat_targets_daily_mv TO threat_targets_daily AS
SELECT
    toDate(detected_at, 'UTC') AS day,
    registry,
    target,
    uniqExactState(name) AS squats,
    uniqExactState(threat_id) AS threats,
    max(risk_score) AS max_risk
FROM threats
WHERE target != '' AND threat_type IN ('typosquat', 'dependency_confusion')
GROUP BY day, registry, target;

INSERT INTO threat_targets_daily
SELECT
    toDate(detected_at, 'UTC') AS day,
    registry,
    target,
    uniqExactState(name) AS squats,
    uniqExactState(threat_id) AS threats,
    max(risk_score) AS max_risk
FROM threats
WHERE target != '' AND threat_type IN ('typosquat', 'dependency_confusion')
GROUP BY day, registry, target;
