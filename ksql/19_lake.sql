-- job: lake
-- The lake: every clean event (a valid event of a known user, each event_id once) as Parquet
-- files for batch engines such as Spark (clicklib.batch), in folders by the UTC day and hour
-- of the event: ${lake.clean_events}/day=YYYY-MM-DD/hour=HH/. Its input is the one the
-- per-minute windows count (ksql/10_unique_events.sql), so a day recomputed from the lake
-- must equal the streaming tables (`clicklib lake recompute`). Profiles are not copied: the
-- first copy of an event is written, and a profile that arrives after it would never reach it.
--
-- Exactly once: the file sink writes into hidden in-progress files and makes them visible only
-- when the checkpoint that holds the Kafka offsets and the deduplication state completes. A
-- job restarted from that checkpoint (a TaskManager killed, the supervisor resuming it) drops
-- what it had written since and reads those events again: none is lost or written twice. A
-- replay older than ${dedup_ttl} (the deduplication's memory) is written again; clicklib.batch
-- reads each event_id once whatever the files hold.
--
-- Each checkpoint closes the files it covers, so the lake gets up to one file per hour folder
-- every ${checkpoint_interval}; batch readers list them all.
CREATE TABLE lake_clean_events (
  event_id STRING,
  `date` BIGINT,
  session_id STRING,
  user_id STRING,
  event STRING,
  page_type STRING,
  current_url STRING,
  referrer STRING,
  partner_id STRING,
  partner_name STRING,
  init_session BOOLEAN,
  user_agent STRING,
  ip STRING,
  city STRING,
  country STRING,
  `language` STRING,
  status BIGINT,
  `day` STRING,
  `hour` STRING
) PARTITIONED BY (`day`, `hour`) WITH (
  'connector' = 'filesystem',
  'path' = '${lake.clean_events}',
  'format' = 'parquet',
  'parquet.compression' = 'SNAPPY',
  -- A folder is finished when the watermark (the newest event time less the allowed delay)
  -- passes its hour's end (its start plus the delay below): the next checkpoint writes an empty
  -- _SUCCESS file into it. An event that arrives later still lands in its folder, in a file of
  -- its own.
  'sink.partition-commit.trigger' = 'partition-time',
  'partition.time-extractor.timestamp-pattern' = '$day $hour:00:00',
  'sink.partition-commit.delay' = '1 h',
  'sink.partition-commit.watermark-time-zone' = 'UTC',
  'sink.partition-commit.policy.kind' = 'success-file'
);

-- Each clean event once, in the folder of its UTC day and hour.
INSERT INTO lake_clean_events
SELECT
  event_id, `date`, session_id, user_id, event, page_type, current_url, referrer, partner_id,
  partner_name, init_session, user_agent, ip, city, country, `language`, status, `day`,
  DATE_FORMAT(ts, 'HH')
FROM clickstream_unique_clean_events;
