-- job: ingest
-- Every invalid raw message, verbatim, with the reason it was rejected and where it was read
-- from, so that nothing the producer sent is lost in silence. The message is text; bytes that
-- are not UTF-8 text are kept in message_base64 instead (message is then null), and a record
-- without a value has neither. Written exactly once: in a Kafka
-- transaction committed with each checkpoint, so a job restarted from its last checkpoint
-- does not write a dead letter twice. Readers use isolation.level=read_committed; a dead letter
-- becomes visible when the checkpoint after it completes (within the checkpoint interval).
CREATE TABLE clickstream_dlq (
  message STRING,
  message_base64 STRING,
  reason STRING,
  source_partition INT,
  source_offset BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_dlq}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${namespace}clicklib-dlq',
  -- The broker refuses transactions longer than its transaction.max.timeout.ms (15 min).
  'properties.transaction.timeout.ms' = '900000',
  'format' = 'json'
);

-- Route each message the checks rejected, untouched, with its reason and Kafka position.
INSERT INTO clickstream_dlq
SELECT message_text, message_base64, invalid_reason, kafka_partition, kafka_offset
FROM clickstream_checked
WHERE invalid_reason IS NOT NULL;
