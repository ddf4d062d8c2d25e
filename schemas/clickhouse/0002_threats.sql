-- Migration 0002: table threats (unchanged since typostream first created it).
--
-- typostream.threats: one row per threat (finding) raised on a publish event.
--
-- Idempotence: ReplacingMergeTree keyed by threat_id (ORDER BY = dedup key), version column detected_at;
-- reads use FINAL. No partition key: detected_at can differ between a first run and a replay, and rows
-- are only collapsed within one partition. Batches also carry an insert_deduplication_token, which
-- works on this non-replicated table because non_replicated_deduplication_window > 0 (see events.sql).
--
-- Columns:
--   threat_id    deterministic hex id of the finding (event + technique + target)
--   event_id     events.event_id of the publish event (correlation id)
--   detected_at  when the threat was raised (UTC, ms)
--   registry     npm | pypi
--   name         the suspicious package name
--   version      its version
--   threat_type  e.g. typosquat, malicious_install_script
--   target       the popular package imitated ('' when not applicable)
--   technique    detector id, e.g. typosquat.omitted
--   severity     low | medium | high | critical
--   confidence   0.0 .. 1.0
--   risk_score   0 .. 100
--   evidence     short human-readable or JSON evidence
CREATE TABLE IF NOT EXISTS threats
(
    threat_id   String,
    event_id    String,
    detected_at DateTime64(3, 'UTC'),
    registry    LowCardinality(String),
    name        String,
    version     String,
    threat_type LowCardinality(String),
    target      String,
    technique   LowCardinality(String),
    severity    LowCardinality(String),
    confidence  Float32,
    risk_score  UInt8,
    evidence    String
)
ENGINE = ReplacingMergeTree(detected_at)
ORDER BY threat_id
SETTINGS non_replicated_deduplication_window = 1000;
