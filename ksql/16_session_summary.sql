-- job: aggregates
-- One row per session of every visitor, anonymous ones included: the table the analysis reads
-- instead of raw events, so its cost follows the number of sessions, not of events. A session
-- is a session_id's events until 30 minutes pass without one (a session window per
-- session_id); it is written once the watermark passes its end, 30 minutes after its last
-- event, or when `clicklib pipeline close` ends a run.
--
-- Where a session came from (channel, device, partner, landing page) is read from its
-- landing event: the event that opened it (init_session), or its earliest event when no event
-- says so. The exit page is its last page view by event time. "First" and "last" by event time
-- are the smallest and largest of "zero-padded time + values": MIN and MAX merge when two
-- session windows merge, which FIRST_VALUE over arrival order would not.

-- The session_summary topic: one JSON row per closed session, times in UTC ISO-8601.
CREATE TABLE session_summary (
  `day` DATE,
  session_start TIMESTAMP(3),
  session_id STRING,
  session_end TIMESTAMP(3),
  user_id STRING,
  channel STRING,
  device STRING,
  partner_name STRING,
  landing_page STRING,
  exit_page STRING,
  exit_status BIGINT,
  `events` BIGINT,
  pageviews BIGINT,
  duration_s DOUBLE,
  errors BIGINT,
  viewed_product BOOLEAN,
  reached_cart BOOLEAN,
  reached_checkout BOOLEAN,
  purchased BOOLEAN
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.session_summary}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601'
);

-- Each valid event with its landing-event and page-view facts packed behind its time, so that
-- MIN and MAX below pick the values of the earliest and latest event (CHR(31), the unit
-- separator, never occurs in a URL or a page type).
CREATE VIEW session_events AS
SELECT
  session_id, user_id, ts, `date`, event, page_type, status, init_session,
  CONCAT_WS(CHR(31), LPAD(CAST(`date` AS STRING), 15, '0'), COALESCE(referrer, ''), COALESCE(current_url, ''),
    COALESCE(user_agent, ''), COALESCE(partner_name, ''), COALESCE(page_type, '')) AS landing_facts,
  CASE WHEN event = 'pageview' THEN CONCAT_WS(CHR(31), LPAD(CAST(`date` AS STRING), 15, '0'),
    COALESCE(page_type, ''), CAST(status AS STRING)) END AS page_facts
FROM clickstream_unique_events;

-- Each session window: its size and outcome, and the packed facts of its landing event and
-- of its last page view.
CREATE VIEW session_windows AS
SELECT
  session_id,
  window_start,
  window_end,
  MAX(user_id) AS user_id,  -- the signed-in user; the largest id should a session have two
  COALESCE(MIN(CASE WHEN init_session THEN landing_facts END), MIN(landing_facts)) AS landing,
  MAX(page_facts) AS last_page,
  COUNT(*) AS `events`,
  COUNT(*) FILTER (WHERE event = 'pageview') AS pageviews,
  MAX(`date`) - MIN(`date`) AS duration_ms,
  COUNT(*) FILTER (WHERE event = 'pageview' AND status >= 400) AS errors,
  COUNT(*) FILTER (WHERE event = 'pageview' AND status < 400 AND page_type = 'productDetail') > 0 AS viewed_product,
  COUNT(*) FILTER (WHERE status < 400 AND ((event = 'pageview' AND page_type = 'cart') OR event = 'add_to_cart')) > 0
    AS reached_cart,
  COUNT(*) FILTER (WHERE event = 'pageview' AND status < 400 AND page_type = 'checkout') > 0 AS reached_checkout,
  COUNT(*) FILTER (WHERE event = 'purchase' AND status < 400) > 0 AS purchased
FROM TABLE(SESSION(TABLE session_events PARTITION BY session_id, DESCRIPTOR(ts), INTERVAL '30' MINUTE))
GROUP BY session_id, window_start, window_end;

-- The packed facts unpacked: referrer and page of the landing event, its user agent, partner
-- and page type, and the last page view's page type and status. A URL's host is what follows
-- its scheme (any scheme: android-app:// too) up to a port, path, query or fragment, lower
-- case, without `www.`; a referrer without a scheme has no host.
CREATE VIEW session_facts AS
SELECT
  *,
  NULLIF(SPLIT_INDEX(landing, CHR(31), 1), '') AS referrer,
  REGEXP_REPLACE(LOWER(REGEXP_EXTRACT(SPLIT_INDEX(landing, CHR(31), 1), '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]*)', 1)), '^www\.', '')
    AS referrer_host,
  REGEXP_REPLACE(LOWER(REGEXP_EXTRACT(SPLIT_INDEX(landing, CHR(31), 2), '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]*)', 1)), '^www\.', '')
    AS page_host,
  SPLIT_INDEX(landing, CHR(31), 3) AS user_agent,
  NULLIF(SPLIT_INDEX(landing, CHR(31), 4), '') AS partner_name,
  NULLIF(SPLIT_INDEX(landing, CHR(31), 5), '') AS landing_page,
  NULLIF(SPLIT_INDEX(last_page, CHR(31), 1), '') AS exit_page,
  CAST(SPLIT_INDEX(last_page, CHR(31), 2) AS BIGINT) AS exit_status
FROM session_windows;

-- Write each closed session. The channel is where the landing event came from, as
-- clicklib.analysis.referrer_source names it: direct without a referrer, internal from the
-- site itself, a known source by keyword in the referrer's host, else that host. The device
-- is mobile when the user agent names a phone or tablet. The session ends at its last event
-- (the window ends 30 minutes later).
INSERT INTO session_summary
SELECT
  CAST(window_start AS DATE),
  window_start,
  session_id,
  window_end - INTERVAL '30' MINUTE,
  user_id,
  CASE
    WHEN referrer IS NULL THEN 'direct'
    WHEN referrer_host IS NULL OR referrer_host = '' THEN 'unknown'
    WHEN referrer_host = page_host THEN 'internal'
    WHEN referrer_host LIKE '%google%' THEN 'google'
    WHEN referrer_host LIKE '%bing%' THEN 'bing'
    WHEN referrer_host LIKE '%yahoo%' THEN 'yahoo'
    WHEN referrer_host LIKE '%duckduckgo%' THEN 'duckduckgo'
    WHEN referrer_host LIKE '%facebook%' THEN 'facebook'
    WHEN referrer_host LIKE '%instagram%' THEN 'instagram'
    WHEN referrer_host LIKE '%twitter%' THEN 'twitter'
    WHEN referrer_host LIKE '%tiktok%' THEN 'tiktok'
    WHEN referrer_host LIKE '%youtube%' THEN 'youtube'
    WHEN referrer_host LIKE '%linkedin%' THEN 'linkedin'
    WHEN referrer_host LIKE '%pinterest%' THEN 'pinterest'
    WHEN referrer_host LIKE '%newsletter%' THEN 'newsletter'
    ELSE referrer_host
  END,
  CASE WHEN REGEXP(user_agent, 'Mobile|Android|iPhone|iPad') THEN 'mobile' ELSE 'desktop' END,
  partner_name,
  landing_page,
  exit_page,
  exit_status,
  `events`,
  pageviews,
  CAST(duration_ms AS DOUBLE) / 1000,
  errors,
  viewed_product,
  reached_cart,
  reached_checkout,
  purchased
FROM session_facts;
