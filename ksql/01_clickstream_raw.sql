-- job: ingest
-- The raw topic, read verbatim: the bytes of each Kafka message, so that a message that is not
-- even JSON, or not even UTF-8 text, or has no value at all, still reaches the dead-letter topic
-- unchanged instead of failing the job (as STRING, bytes that are not UTF-8 would be replaced
-- with U+FFFD in silence). This job
-- has no windows, so it needs no event time; the checked events carry theirs on.

-- One task per raw partition: each task reads exactly one partition and, with the 'fixed'
-- partitioner of clickstream_valid, writes exactly one partition of the valid topic, so every
-- valid partition keeps the order of one raw partition and the windows' watermark stays exact.
SET 'parallelism.default' = '${raw_partitions}';

-- The raw topic's messages with where they were read from.
CREATE TABLE clickstream_raw (
  message BYTES,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'properties.group.id' = '${group_id}',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'format' = 'raw'
);
