-- job: ingest
-- The event schema's check, as a Java table function (ksql/functions, CheckClickEvent): it parses
-- each message once and returns why it is invalid (NULL when valid) with the typed fields. The
-- rules, their order and reason texts are DESIGN.md's, the same as clicklib.events in Python;
-- both pass the shared vectors in tests/vectors/events.jsonl. Written in SQL with JSON_QUERY and
-- JSON_VALUE the check took some thirty JSON path evaluations, each a full parse, per message:
-- two thirds of the pipeline's CPU (README, Performance).
CREATE TEMPORARY SYSTEM FUNCTION check_click_event AS 'io.clicklib.flink.CheckClickEvent' LANGUAGE JAVA;

-- Each raw message with the outcome of its check and where it was read. The
-- event time must be plausible when the message is checked: not before ${date_earliest}, at most
-- ${date_max_ahead} ahead of the clock; a date in seconds or microseconds is dead-lettered with a
-- reason saying so, instead of moving every window's watermark decades away.
CREATE VIEW clickstream_checked AS
SELECT r.kafka_partition, r.kafka_offset, c.*
FROM clickstream_raw AS r,
  LATERAL TABLE(check_click_event(r.message, CAST(${date_earliest_ms} AS BIGINT), CAST(${date_max_ahead_ms} AS BIGINT))) AS c;

-- The valid events as typed columns, ready for the typed topic clickstream_valid. `day` is the
-- UTC day of the event time, the partition of the day-bucketed tables. status is BIGINT because
-- the schema allows any integer; the Cassandra column is int, so an absurd status ends in the
-- sink's dead-letter topic rather than being silently cut.
CREATE VIEW clickstream_events AS
SELECT
  event_id,
  `date`,
  DATE_FORMAT(TO_TIMESTAMP_LTZ(`date`, 3), 'yyyy-MM-dd') AS `day`,
  session_id, user_id, event, page_type, current_url, referrer, partner_id, partner_name,
  init_session, user_agent, ip, city, country, `language`, status
FROM clickstream_checked
WHERE invalid_reason IS NULL;
