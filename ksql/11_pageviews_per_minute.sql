-- job: aggregates
-- Page views of known users per page type and minute: how much each part of the shop is seen,
-- and by how many distinct users. Emitted once per window, when the watermark passes its end.

-- The pageviews_per_minute topic: one JSON row per closed window, times in UTC ISO-8601.
CREATE TABLE pageviews_per_minute (
  `day` DATE,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  page_type STRING,
  `views` BIGINT,
  `users` BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.pageviews_per_minute}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601'
);

-- Count each minute's page views of known users per page type; the day column buckets the
-- Cassandra partition.
INSERT INTO pageviews_per_minute
SELECT
  CAST(window_start AS DATE),
  window_start,
  window_end,
  page_type,
  COUNT(*),
  COUNT(DISTINCT user_id)
FROM TABLE(TUMBLE(TABLE clickstream_unique_clean_events, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
WHERE event = 'pageview'
GROUP BY window_start, window_end, page_type;
