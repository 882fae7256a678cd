-- Session settings for every job of the pipeline. clicklib.streaming_sql runs the definition files
-- (those without a `-- job:` line) in one SQL Gateway session per job, then that job's
-- INSERTs as one statement set. ${...} placeholders are filled from clicklib settings.

-- Windows are computed and stored in UTC, whatever the machine's time zone.
SET 'table.local-time-zone' = 'UTC';

-- Checkpoints commit the Kafka source offsets (visible as consumer-group lag) and bound how
-- much a restarted job re-reads; sinks are at-least-once and every sink is an idempotent upsert.
SET 'execution.checkpointing.interval' = '${checkpoint_interval}';

-- A job's checkpoints outlive it (cancelled, failed, its JobManager gone), so that it can be
-- resumed from the newest one; clicklib removes the ones no job needs any more.
SET 'execution.checkpointing.externalized-checkpoint-retention' = 'RETAIN_ON_CANCELLATION';

-- One task per operator: on a laptop the two cores are shared with Kafka, Connect and Cassandra.
SET 'parallelism.default' = '${parallelism}';

-- The clean table's key (event_id) is unique per event, so the join's retractions can be
-- written straight through; the default upsert materializer would keep every key in state forever.
SET 'table.exec.sink.upsert-materialize' = 'NONE';
