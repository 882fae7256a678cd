-- job: aggregates
-- The site's health per minute, anonymous visitors included: every valid event (`events`), the
-- page loads (`requests`: pageview events) and the failed ones (`errors`: HTTP status >= 400).
-- `alert` is raised when more than ${alert_percent} % of a minute's page loads failed; integer
-- arithmetic keeps the threshold exact. Clicks and other actions are not requests: dividing by
-- every event would dilute the rate (about 1.7 times on the simulated shop) and raise the alert
-- only well above its threshold.

-- The status_per_minute topic: one JSON row per closed window, times in UTC ISO-8601.
CREATE TABLE status_per_minute (
  `day` DATE,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  `events` BIGINT,
  `requests` BIGINT,
  `errors` BIGINT,
  `alert` BOOLEAN
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.status_per_minute}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601'
);

-- Count each minute's events, page loads and failed page loads, and raise the alert over the
-- threshold.
INSERT INTO status_per_minute
SELECT
  CAST(window_start AS DATE),
  window_start,
  window_end,
  COUNT(*),
  COUNT(*) FILTER (WHERE event = 'pageview'),
  COUNT(*) FILTER (WHERE event = 'pageview' AND status >= 400),
  COUNT(*) FILTER (WHERE event = 'pageview' AND status >= 400) * 100
    > COUNT(*) FILTER (WHERE event = 'pageview') * ${alert_percent}
FROM TABLE(TUMBLE(TABLE clickstream_unique_events, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end;
