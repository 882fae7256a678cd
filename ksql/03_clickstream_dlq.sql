-- job: ingest
-- Every invalid raw message, verbatim, with the reason it was rejected and where it was read
-- from, so that nothing the producer sent is lost in silence.
CREATE TABLE clickstream_dlq (
  message STRING,
  reason STRING,
  source_partition INT,
  source_offset BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_dlq}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  'format' = 'json'
);

-- Route each message the checks rejected, untouched, with its reason and Kafka position.
INSERT INTO clickstream_dlq
SELECT message, invalid_reason, kafka_partition, kafka_offset
FROM clickstream_checked
WHERE invalid_reason IS NOT NULL;
