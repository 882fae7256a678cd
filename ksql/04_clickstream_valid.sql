-- job: ingest
-- The valid events, typed: what the ingest job checked once, written as plain JSON for the
-- enrichment and the windows (ksql/07_valid_events.sql reads them back). Checking a raw message
-- takes some 30 JSON path evaluations in SQL; doing it once here instead of in every query that
-- needs valid events is what lets the pipeline keep up (see the README's Performance section).
--
-- Order: the ingest job runs one task per raw partition and the 'fixed' partitioner sends each
-- task's events to one partition of this topic, so every partition here is one raw partition's
-- valid events in their original order (a hash of a key would interleave raw partitions, which
-- drift apart while a backlog is read, and events would come out late). Both topics therefore
-- have the same number of partitions.
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
  status BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_valid}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'sink.partitioner' = 'fixed',
  'format' = 'json'
);
