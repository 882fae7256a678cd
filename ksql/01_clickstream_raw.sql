-- The raw topic, read verbatim: one STRING per Kafka message, so that a message that is not
-- even JSON still reaches the dead-letter topic unchanged instead of failing the job.
--
-- Event time is the event's `date` (epoch milliseconds). The watermark trails the highest
-- `date` seen by ${watermark_delay_seconds} s, the simulator's maximum out-of-order jitter, so no
-- event of a well-behaved producer is late. An invalid message has no trustworthy date and
-- gets time 0, which never moves the watermark.
--
-- Idle partitions: the Kafka source keeps one watermark per partition and forwards the
-- smallest. A partition that receives nothing for ${idle_timeout} is marked idle and stops
-- holding the watermark back, so windows keep closing while other partitions flow. When
-- every partition is idle the watermark stops where it is: the newest windows close only
-- when new events arrive (the last ${watermark_delay_seconds} s of event time plus the window length
-- stay open until then).
CREATE TABLE clickstream_raw (
  message STRING,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  proc_time AS PROCTIME(),
  ts AS TO_TIMESTAMP_LTZ(
    CASE
      WHEN REGEXP(JSON_QUERY(message, '$.date' WITH CONDITIONAL ARRAY WRAPPER), '^\[-?[0-9]{1,18}\]$')
      THEN CAST(JSON_VALUE(message, '$.date') AS BIGINT)
      ELSE 0
    END, 3),
  WATERMARK FOR ts AS ts - INTERVAL '${watermark_delay_seconds}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic_raw}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  'properties.group.id' = '${group_id}',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'scan.watermark.idle-timeout' = '${idle_timeout}',
  'format' = 'raw'
);
