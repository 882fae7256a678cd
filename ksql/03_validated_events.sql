-- Each raw message with the reason it is invalid, or NULL when it is a valid event.
-- The rules are DESIGN.md's event schema, checked in the same order and with the same
-- reason texts as clicklib.events.invalid_reason, so Python and SQL agree on every message.
--
-- JSON_QUERY(... WITH CONDITIONAL ARRAY WRAPPER) renders a field as JSON text wrapped in
-- brackets (["text"], [12], [true]) and a missing or null field as NULL; the regular
-- expressions then check the JSON type exactly: JSON_VALUE alone would accept "12" as a
-- number. Integers are JSON integer literals of at most 18 digits, as in Python.
CREATE VIEW clickstream_checked AS
SELECT
  message,
  kafka_partition,
  kafka_offset,
  ts,
  proc_time,
  CASE
    WHEN message IS NULL OR NOT (message IS JSON) THEN 'malformed JSON'
    WHEN NOT (message IS JSON OBJECT) THEN 'not a JSON object'
    -- Flink's JSON parser ignores text after the first object; Python's does not.
    WHEN NOT REGEXP(message, '\}[ \t\r\n]*$') THEN 'malformed JSON'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.event_id' WITH CONDITIONAL ARRAY WRAPPER), ''), '^\["([^"\\]|\\.)+"\]$')
      THEN 'event_id: expected a non-empty string'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.date' WITH CONDITIONAL ARRAY WRAPPER), ''), '^\[-?[0-9]{1,18}\]$')
      THEN 'date: expected an integer (epoch milliseconds)'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.session_id' WITH CONDITIONAL ARRAY WRAPPER), ''), '^\["([^"\\]|\\.)*"\]$')
      THEN 'session_id: expected a string'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.event' WITH CONDITIONAL ARRAY WRAPPER), ''), '^\["([^"\\]|\\.)*"\]$')
      THEN 'event: expected a string'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.page_type' WITH CONDITIONAL ARRAY WRAPPER), ''), '^\["([^"\\]|\\.)*"\]$')
      THEN 'page_type: expected a string'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.current_url' WITH CONDITIONAL ARRAY WRAPPER), ''), '^\["([^"\\]|\\.)*"\]$')
      THEN 'current_url: expected a string'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.init_session' WITH CONDITIONAL ARRAY WRAPPER), ''), '^\[(true|false)\]$')
      THEN 'init_session: expected a boolean'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.status' WITH CONDITIONAL ARRAY WRAPPER), ''), '^\[-?[0-9]{1,18}\]$')
      THEN 'status: expected an integer'
    -- Optional fields: missing and null are fine (JSON_QUERY gives NULL), anything but a string is not.
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.user_id' WITH CONDITIONAL ARRAY WRAPPER), '[""]'), '^\["([^"\\]|\\.)*"\]$')
      THEN 'user_id: expected a string or null'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.referrer' WITH CONDITIONAL ARRAY WRAPPER), '[""]'), '^\["([^"\\]|\\.)*"\]$')
      THEN 'referrer: expected a string or null'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.partner_id' WITH CONDITIONAL ARRAY WRAPPER), '[""]'), '^\["([^"\\]|\\.)*"\]$')
      THEN 'partner_id: expected a string or null'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.partner_name' WITH CONDITIONAL ARRAY WRAPPER), '[""]'), '^\["([^"\\]|\\.)*"\]$')
      THEN 'partner_name: expected a string or null'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.user_agent' WITH CONDITIONAL ARRAY WRAPPER), '[""]'), '^\["([^"\\]|\\.)*"\]$')
      THEN 'user_agent: expected a string or null'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.ip' WITH CONDITIONAL ARRAY WRAPPER), '[""]'), '^\["([^"\\]|\\.)*"\]$')
      THEN 'ip: expected a string or null'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.city' WITH CONDITIONAL ARRAY WRAPPER), '[""]'), '^\["([^"\\]|\\.)*"\]$')
      THEN 'city: expected a string or null'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.country' WITH CONDITIONAL ARRAY WRAPPER), '[""]'), '^\["([^"\\]|\\.)*"\]$')
      THEN 'country: expected a string or null'
    WHEN NOT REGEXP(COALESCE(JSON_QUERY(message, '$.language' WITH CONDITIONAL ARRAY WRAPPER), '[""]'), '^\["([^"\\]|\\.)*"\]$')
      THEN 'language: expected a string or null'
  END AS invalid_reason
FROM clickstream_raw;

-- The valid events as typed columns, event time `ts` kept as the rowtime attribute.
-- status is BIGINT because the schema allows any integer; the Cassandra column is int, so an
-- absurd status ends in the sink's dead-letter topic rather than being silently cut.
CREATE VIEW clickstream_events AS
SELECT
  JSON_VALUE(message, '$.event_id') AS event_id,
  CAST(JSON_VALUE(message, '$.date') AS BIGINT) AS `date`,
  DATE_FORMAT(ts, 'yyyy-MM-dd') AS `day`,
  JSON_VALUE(message, '$.session_id') AS session_id,
  JSON_VALUE(message, '$.user_id') AS user_id,
  JSON_VALUE(message, '$.event') AS event,
  JSON_VALUE(message, '$.page_type') AS page_type,
  JSON_VALUE(message, '$.current_url') AS current_url,
  JSON_VALUE(message, '$.referrer') AS referrer,
  JSON_VALUE(message, '$.partner_id') AS partner_id,
  JSON_VALUE(message, '$.partner_name') AS partner_name,
  JSON_VALUE(message, '$.init_session' RETURNING BOOLEAN) AS init_session,
  JSON_VALUE(message, '$.user_agent') AS user_agent,
  JSON_VALUE(message, '$.ip') AS ip,
  JSON_VALUE(message, '$.city') AS city,
  JSON_VALUE(message, '$.country') AS country,
  JSON_VALUE(message, '$.language') AS `language`,
  CAST(JSON_VALUE(message, '$.status') AS BIGINT) AS status,
  ts,
  proc_time
FROM clickstream_checked
WHERE invalid_reason IS NULL;

-- Clean events: the valid ones of known users (the seed's `WHERE user_id IS NOT NULL`).
CREATE VIEW clickstream_clean_events AS
SELECT * FROM clickstream_events WHERE user_id IS NOT NULL;
