-- jobs: ingest, enrich, aggregates
-- The valid events, typed: what the ingest job checked once, read by the
-- enrichment and the windows as plain JSON. Checking a raw message takes some 30 JSON path
-- evaluations; doing it once here instead of in every query that needs valid events is what
-- lets the pipeline keep up (see the README's Performance section).
--
-- Order: the ingest job runs one task per raw partition and the 'fixed' partitioner sends each
-- task's events to one partition of this topic, so every partition here is one raw partition's
-- valid events in their original order (a hash of a key would interleave raw partitions, which
-- drift apart while a backlog is read, and events would come out late). Both topics therefore
-- have the same number of partitions.
--
-- The ingest job writes this table; the other jobs read it, with event time from `date`. The
-- watermark trails the highest `date` seen by ${watermark_delay_seconds} s, the simulator's maximum
-- out-of-order jitter, so no event of a well-behaved producer is late.
--
-- Idle partitions: the Kafka source keeps one watermark per partition and forwards the
-- smallest. A partition that receives nothing for ${idle_timeout} is marked idle and stops
-- holding the watermark back, so windows keep closing while other partitions flow. When
-- every partition is idle the watermark stops where it is: the newest windows close only
-- when new events arrive (the last ${watermark_delay_seconds} s of event time plus the window length
-- stay open until then).
CREATE TABLE clickstream_valid (
  event_id STRING,
  `date` BIGINT,
  `day` STRING,
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
  ts AS TO_TIMESTAMP_LTZ(`date`, 3),
  proc_time AS PROCTIME(),
  WATERMARK FOR ts AS ts - INTERVAL '${watermark_delay_seconds}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_valid}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  'properties.group.id' = '${group_id}',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'scan.watermark.idle-timeout' = '${idle_timeout}',
  'sink.partitioner' = 'fixed',
  'format' = 'json'
);
