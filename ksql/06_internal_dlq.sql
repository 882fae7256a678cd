-- jobs: enrich, aggregates, avro, lake
-- Records of the pipeline's own topics that a job cannot read. The ingest job writes the valid
-- events and the profiles come from the application, but any Kafka client can write either
-- topic; a record the job could not parse would fail the job, and fail it again on every restart
-- (a poison pill). The jobs read those topics as bytes, check each record, and write the ones
-- that fail here, with where they were read, why, and which job skipped them; the job goes on.
-- Three jobs read the valid events (enrich, aggregates, lake), so a bad record there is reported
-- once by each; the avro job reads the clean events (ksql/18_clickstream_avro.sql).

-- The event check of the raw messages (ksql/functions), run again on each valid-topic record.
CREATE TEMPORARY SYSTEM FUNCTION check_click_event AS 'io.clicklib.flink.CheckClickEvent' LANGUAGE JAVA;

-- A valid-topic record's event time for the watermark: its date when it is a valid event, else 0.
CREATE TEMPORARY SYSTEM FUNCTION event_time AS 'io.clicklib.flink.EventTime' LANGUAGE JAVA;

-- A profile record's check: its typed fields, or why it cannot be used.
CREATE TEMPORARY SYSTEM FUNCTION check_user_profile AS 'io.clicklib.flink.CheckUserProfile' LANGUAGE JAVA;

-- The internal dead-letter topic: the record as text (or base64 when its bytes are not UTF-8
-- text), its key, the reason, its topic, partition and offset, and the job. Written exactly once,
-- in Kafka transactions committed with each checkpoint, like the raw dead letters.
CREATE TABLE clickstream_internal_dlq (
  message STRING,
  message_base64 STRING,
  record_key STRING,
  reason STRING,
  source_topic STRING,
  source_partition INT,
  source_offset BIGINT,
  job STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_internal_dlq}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${namespace}clicklib-${job}-internal-dlq',
  'properties.transaction.timeout.ms' = '900000',
  'format' = 'json'
);
