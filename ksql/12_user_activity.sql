-- job: aggregates
-- Events per known user over the last minute, refreshed every 10 seconds (hopping windows, as
-- in Confluent's KSQL clickstream demo): who is active right now, and how intensely.

-- The user_activity topic: one JSON row per closed window, times in UTC ISO-8601.
CREATE TABLE user_activity (
  user_id STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  `events` BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.user_activity}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601'
);

-- Count each known user's events in every one-minute window, one window starting every 10 s.
INSERT INTO user_activity
SELECT user_id, window_start, window_end, COUNT(*)
FROM TABLE(HOP(TABLE clickstream_unique_clean_events, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, user_id;
