-- migration: rebuild
--
-- Migration 0003: table events without a partition key. A rebuild migration: ClickHouse cannot ALTER
-- a table's partition or sorting key, so when the table's keys differ from this statement's, its rows
-- are copied into a table built from it, the two are swapped with EXCHANGE TABLES (atomic) and the old
-- one is dropped (agents/adapters/migrations.py; a rebuild interrupted by a crash is redone at the next
-- start). The keys are checked again at every start, so a table restored from an older backup is
-- rebuilt too. Materialized views reading events follow the name and keep working.
--
-- Why no partition key: ReplacingMergeTree collapses duplicates only within a partition, and ClickHouse
-- refuses an INSERT block touching more than max_partitions_per_insert_block (100) partitions. The table
-- used to be PARTITION BY toYYYYMM(created_date) (0001): a backfill batch (`feed --npm-since 0`) spans
-- 15+ years, so the insert failed, was retried forever and stalled the sink. A coarser key would only
-- move the limit: created_date is whatever the feed says (validate accepts 1970-2299), so toYear() still
-- admits 330 partitions. Nothing reads by partition (no DROP PARTITION, reads are FINAL over the whole
-- table, keyed by event_id), so one partition costs nothing and makes deduplication global. Retention
-- is a row TTL (Settings.clickhouse_ttl_days, applied at start). Columns: see 0001.
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
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;
