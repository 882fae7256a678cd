-- job: aggregates
-- Page loads and errors (HTTP status >= 400) per minute over every valid event, anonymous
-- visitors included: the site's health. `alert` is raised when more than ${alert_percent} % of a
-- minute's page loads failed; integer arithmetic keeps the threshold exact.

-- The status_per_minute topic: one JSON row per closed window, times in UTC ISO-8601.
CREATE TABLE status_per_minute (
  `day` DATE,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  `requests` BIGINT,
  `errors` BIGINT,
  `alert` BOOLEAN
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.status_per_minute}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601'
);

-- Count each minute's page loads and failed ones, and raise the alert over the threshold.
INSERT INTO status_per_minute
SELECT
  CAST(window_start AS DATE),
  window_start,
  window_end,
  COUNT(*),
  COUNT(*) FILTER (WHERE status >= 400),
  COUNT(*) FILTER (WHERE status >= 400) * 100 > COUNT(*) * ${alert_percent}
FROM TABLE(TUMBLE(TABLE clickstream_unique_events, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end;
