-- jobs: enrich, aggregates, lake
-- The valid events topic read back, as bytes: each record is checked again (the same check as a
-- raw message's) so that a record some other client wrote there is dead-lettered instead of
-- failing the job. Event time comes from `date`.
--
-- The watermark trails the highest `date` seen by ${watermark_delay_seconds} s, the simulator's
-- maximum out-of-order jitter, so no event of a well-behaved producer is late. A record that is
-- not a valid event has event time 0 and never moves it.
--
-- Idle partitions: the Kafka source keeps one watermark per partition and forwards the
-- smallest. A partition that receives nothing for ${idle_timeout} is marked idle and stops
-- holding the watermark back, so windows keep closing while other partitions flow. When
-- every partition is idle the watermark stops where it is: the newest windows close only
-- when new events arrive (the last ${watermark_delay_seconds} s of event time plus the window
-- length stay open until then).
--
-- Marks: a record with the header `clicklib-mark` is no event but a time mark that clicklib
-- writes to every partition, its time (epoch ms) in the header's value. It moves the
-- partition's watermark and wakes it if idle, and is skipped below: neither an event nor a
-- dead letter (a mark whose value is not a number has time 0, and moves nothing). Two uses:
-- - before a simulated run is produced, marked with the run's start: every partition is awake
--   when the burst comes, so the first partition read cannot lift the watermark past the
--   others' first events (an idle partition does not hold the watermark back);
-- - when a run is closed (`clicklib pipeline close`), marked as far ahead as an event may be
--   dated: Flink drops the end-of-time watermark of a draining source that is idle, and the
--   open windows would stay open.
CREATE TABLE clickstream_valid_records (
  record BYTES,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  headers MAP<STRING, BYTES> METADATA VIRTUAL,
  ts AS TO_TIMESTAMP_LTZ(
    CASE
      WHEN headers['clicklib-mark'] IS NOT NULL THEN COALESCE(TRY_CAST(CAST(headers['clicklib-mark'] AS STRING) AS BIGINT), 0)
      ELSE event_time(record, CAST(${date_earliest_ms} AS BIGINT), CAST(${date_max_ahead_ms} AS BIGINT))
    END, 3),
  proc_time AS PROCTIME(),
  WATERMARK FOR ts AS ts - INTERVAL '${watermark_delay_seconds}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_valid}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'properties.group.id' = '${group_id}',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'scan.watermark.idle-timeout' = '${idle_timeout}',
  'format' = 'raw'
);

-- Each record with the outcome of its check; time marks are left out.
CREATE VIEW clickstream_valid_checked AS
SELECT r.kafka_partition, r.kafka_offset, r.ts, r.proc_time, c.*
FROM clickstream_valid_records AS r,
  LATERAL TABLE(check_click_event(r.record, CAST(${date_earliest_ms} AS BIGINT), CAST(${date_max_ahead_ms} AS BIGINT))) AS c
WHERE r.headers['clicklib-mark'] IS NULL;

-- The valid events as typed columns, with their event time; `day` is the UTC day of `date`.
CREATE VIEW clickstream_valid_events AS
SELECT
  event_id,
  `date`,
  DATE_FORMAT(TO_TIMESTAMP_LTZ(`date`, 3), 'yyyy-MM-dd') AS `day`,
  session_id, user_id, event, page_type, current_url, referrer, partner_id, partner_name,
  init_session, user_agent, ip, city, country, `language`, status, ts, proc_time
FROM clickstream_valid_checked
WHERE invalid_reason IS NULL;

-- Every record of the valid events topic that is not a valid event, with where it was read.
INSERT INTO clickstream_internal_dlq
SELECT
  message_text, message_base64, CAST(NULL AS STRING), invalid_reason, '${topic.clickstream_valid}',
  kafka_partition, kafka_offset, '${job}'
FROM clickstream_valid_checked
WHERE invalid_reason IS NOT NULL;
