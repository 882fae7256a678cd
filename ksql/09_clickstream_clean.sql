-- job: enrich
-- Clean events enriched with their user's profile, keyed by event_id: an upsert topic, so a
-- replayed event overwrites itself instead of appearing twice.
CREATE TABLE clickstream_clean (
  event_id STRING,
  `date` BIGINT,
  `day` STRING,
  bucket INT,
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
  signup_date BIGINT,
  home_city STRING,
  segment STRING,
  PRIMARY KEY (event_id) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${topic.clickstream_clean}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'key.format' = 'raw',
  'value.format' = 'json'
);

-- A regular LEFT JOIN emits each event as soon as it arrives: with the profile when it is
-- already known, otherwise without, corrected (a retraction, then the joined row) when the
-- profile arrives. An event-time temporal join would hold every event back until the
-- watermark passes it, so the newest events would never reach Cassandra while traffic pauses.
-- `bucket` numbers the ${event_bucket_ms} ms slots of the UTC day, the second part of the
-- events_by_day partition key. Events are kept in join state for ${join_state_ttl} only (enough for a late profile);
-- profiles are kept for good. Only known users' events are clean: anonymous visitors (no
-- user_id) are left out here and counted in status_per_minute only.
INSERT INTO clickstream_clean
SELECT /*+ STATE_TTL('e' = '${join_state_ttl}') */
  e.event_id, e.`date`, e.`day`, CAST(MOD(e.`date`, 86400000) / ${event_bucket_ms} AS INT), e.session_id, e.user_id, e.event, e.page_type, e.current_url,
  e.referrer, e.partner_id, e.partner_name, e.init_session, e.user_agent, e.ip, e.city,
  e.country, e.`language`, e.status, u.signup_date, u.home_city, u.segment
FROM clickstream_valid_events AS e
LEFT JOIN clickstream_users AS u ON e.user_id = u.user_id
WHERE e.user_id IS NOT NULL;
