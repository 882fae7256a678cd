-- job: aggregates
-- Sessions of known users, defined by behaviour rather than by the client's session_id: a
-- session window per user closes after 30 minutes without an event. Per session: start (its first
-- event), end (last event + 30 min, as Flink's session windows define it), events, distinct pages viewed,
-- and whether it reached a purchase, the funnel's last step.

-- The user_sessions topic: one JSON row per closed window, times in UTC ISO-8601.
CREATE TABLE user_sessions (
  user_id STRING,
  session_start TIMESTAMP(3),
  session_end TIMESTAMP(3),
  `events` BIGINT,
  `pages` BIGINT,
  reached_purchase BOOLEAN
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.user_sessions}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601'
);

-- Summarise each user's session windows: size, distinct pages viewed, purchase reached.
INSERT INTO user_sessions
SELECT
  user_id,
  window_start,
  window_end,
  COUNT(*),
  COUNT(DISTINCT CASE WHEN event = 'pageview' THEN current_url END),
  MAX(CASE WHEN event = 'purchase' THEN 1 ELSE 0 END) = 1
FROM TABLE(SESSION(TABLE clickstream_unique_clean_events PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '30' MINUTE))
GROUP BY window_start, window_end, user_id;
