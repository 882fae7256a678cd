-- job: avro
-- The clean events in Avro, keyed by user_id: the format other teams' consumers read, with its
-- value schema (schemas/clickstream_avro-value.avsc) held in the schema registry, which
-- `pipeline up` registers before this job starts. A job of its own, so that the other jobs'
-- graphs, and the state their savepoints hold, stay as they were.

-- The clean topic read back, each record as bytes. Any Kafka client can write that topic, and
-- a record Flink's JSON format could not read would fail this job on every restart; so each is
-- checked with the event check of the raw messages (its fields are an event's, plus the profile
-- and the day's slot, which are read or computed again below) and a bad one dead-lettered.
--
-- The topic is an upsert topic by event_id: a record without a value (a tombstone) deletes an
-- event's row without its late profile and is skipped here; the event then appears twice,
-- without and then with its profile, and the Cassandra tables, upserts by event, keep the later.
CREATE TABLE clickstream_clean_records (
  record_key STRING,
  record BYTES,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_clean}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'properties.group.id' = '${group_id}',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'key.format' = 'raw',
  'key.fields' = 'record_key',
  'value.format' = 'raw',
  'value.fields-include' = 'EXCEPT_KEY'
);

-- Each record with the outcome of its check; a clean event also needs its user.
CREATE VIEW clickstream_clean_checked AS
SELECT
  r.record_key, r.kafka_partition, r.kafka_offset, r.record, c.*,
  CASE
    WHEN c.invalid_reason IS NOT NULL THEN c.invalid_reason
    WHEN c.user_id IS NULL THEN 'no user_id: a clean event is a known user''s'
  END AS clean_reason
FROM clickstream_clean_records AS r,
  LATERAL TABLE(check_click_event(r.record, CAST(${date_earliest_ms} AS BIGINT), CAST(${date_max_ahead_ms} AS BIGINT))) AS c
WHERE r.record IS NOT NULL;

-- The Avro topic: the key is the user_id as text, the value the whole event in the Confluent
-- wire format (a zero byte, the schema's 4-byte id in the registry, then Avro binary).
CREATE TABLE clickstream_avro (
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
  segment STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_avro}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'key.format' = 'raw',
  'key.fields' = 'user_id',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${schema_registry_url}',
  'value.avro-confluent.subject' = '${topic.clickstream_avro}-value',
  'value.avro-confluent.schema' = '${avro_schema.clickstream_avro}'
);

-- Every clean event, as it arrives: the day and its slot computed from `date` as the enrichment
-- does (ksql/07_valid_events.sql, 09_clickstream_clean.sql), the profile read from the record.
INSERT INTO clickstream_avro
SELECT
  event_id, `date`, DATE_FORMAT(TO_TIMESTAMP_LTZ(`date`, 3), 'yyyy-MM-dd'),
  CAST(MOD(`date`, 86400000) / ${event_bucket_ms} AS INT), session_id, user_id, event, page_type,
  current_url, referrer, partner_id, partner_name, init_session, user_agent, ip, city, country,
  `language`, status,
  TRY_CAST(JSON_VALUE(CAST(record AS STRING), '$.signup_date') AS BIGINT),
  JSON_VALUE(CAST(record AS STRING), '$.home_city'),
  JSON_VALUE(CAST(record AS STRING), '$.segment')
FROM clickstream_clean_checked
WHERE clean_reason IS NULL;

-- Every clean-topic record that is not a clean event, with its key and where it was read.
INSERT INTO clickstream_internal_dlq
SELECT
  message_text, message_base64, record_key, clean_reason, '${topic.clickstream_clean}',
  kafka_partition, kafka_offset, '${job}'
FROM clickstream_clean_checked
WHERE clean_reason IS NOT NULL;
