-- job: aggregates
-- Late events, in the open: an event whose time is already behind this job's watermark when it
-- arrives comes too late for the windows that have closed (sessions, hopping activity windows
-- and minute windows whose end the watermark passed drop it without a trace). Each such event
-- is written here with the job and the watermark it missed, so it is counted (clicklib.monitor,
-- `clicklib pipeline status`) instead of vanishing. Written exactly once, like the dead letters.
CREATE TABLE clickstream_late (
  event_id STRING,
  `date` BIGINT,
  session_id STRING,
  user_id STRING,
  event STRING,
  page_type STRING,
  job STRING,
  missed_watermark TIMESTAMP_LTZ(3),
  behind_seconds BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_late}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${namespace}clicklib-late',
  'properties.transaction.timeout.ms' = '900000',
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601'
);

-- Each unique event behind the watermark as it reaches the windows (CURRENT_WATERMARK is NULL
-- until the first watermark, so nothing is late before then).
INSERT INTO clickstream_late
SELECT
  event_id,
  `date`,
  session_id,
  user_id,
  event,
  page_type,
  'aggregates',
  CURRENT_WATERMARK(ts),
  CAST(TIMESTAMPDIFF(SECOND, ts, CURRENT_WATERMARK(ts)) AS BIGINT)
FROM clickstream_unique_events
WHERE ts < CURRENT_WATERMARK(ts);
