-- job: aggregates
-- The shop's headline numbers per UTC day, kept up to date as sessions close: a day's row is
-- rewritten with every session that closes, so a notebook reads one row per day instead of
-- the day's sessions. Each count is a sum, so a day's figures are exact at any scale; a
-- median needs the sessions themselves (session_summary).

-- The daily_kpis topic: an upsert stream keyed by day, the newest row per day wins.
CREATE TABLE daily_kpis (
  `day` DATE,
  sessions BIGINT,
  anonymous_sessions BIGINT,
  bounces BIGINT,
  pageviews BIGINT,
  errors BIGINT,
  carts BIGINT,
  purchases BIGINT,
  duration_ms BIGINT,
  PRIMARY KEY (`day`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${topic.daily_kpis}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'key.format' = 'json',
  'value.format' = 'json'
);

-- Sum each day's closed sessions: sessions, those of anonymous visitors, bounces (at most one
-- page view), page views, failed page loads, sessions that reached the cart, sessions that
-- ordered, and their total duration in milliseconds (an integer: sums of fractions would depend
-- on the order sessions close in). A day's sums are kept for good (one row of state per day),
-- exempt from the job's state TTL: sums that expired while no session closed would start again
-- from zero, and the next session would overwrite the day's row with them.
INSERT INTO daily_kpis
SELECT /*+ STATE_TTL('session_windows' = '36500 d') */
  CAST(window_start AS DATE),
  COUNT(*),
  COUNT(*) FILTER (WHERE user_id IS NULL),
  COUNT(*) FILTER (WHERE pageviews <= 1),
  SUM(pageviews),
  SUM(errors),
  COUNT(*) FILTER (WHERE reached_cart),
  COUNT(*) FILTER (WHERE purchased),
  SUM(duration_ms)
FROM session_windows
GROUP BY CAST(window_start AS DATE);
