-- job: enrich
-- User profiles from the compacted topic clickstream_users, keyed by user_id: the latest
-- profile of each user wins. It is the table side of the clean events' enrichment.

-- Every record of the topic from its start, the profile as bytes: a profile Flink's JSON format
-- could not read would fail the job on every restart, so each is checked (check_user_profile)
-- and a bad one dead-lettered instead. A record without a value (a tombstone) deletes the profile.
CREATE TABLE clickstream_user_records (
  user_id STRING,
  profile BYTES,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  proc_time AS PROCTIME()
) WITH (
  'connector' = 'kafka',
  'topic' = '${topic.clickstream_users}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  ${kafka_security}
  'properties.group.id' = '${group_id}',
  'scan.startup.mode' = 'earliest-offset',
  'key.format' = 'raw',
  'key.fields' = 'user_id',
  'value.format' = 'raw',
  'value.fields-include' = 'EXCEPT_KEY'
);

-- Each profile record with the outcome of its check.
CREATE VIEW clickstream_user_checked AS
SELECT user_id, kafka_partition, kafka_offset, proc_time, check_user_profile(user_id, profile) AS p
FROM clickstream_user_records;

-- The newest usable record of each user (arrival order, as the compacted topic keeps it).
CREATE VIEW clickstream_users AS
SELECT user_id, signup_date, home_city, segment, updated_at
FROM (
  SELECT
    user_id, p.signup_date AS signup_date, p.home_city AS home_city, p.segment AS segment,
    p.updated_at AS updated_at,
    ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY proc_time DESC) AS newest_first
  FROM clickstream_user_checked
  WHERE p.invalid_reason IS NULL
)
WHERE newest_first = 1;

-- Every profile record that cannot be used, with its key and where it was read.
INSERT INTO clickstream_internal_dlq
SELECT
  p.message_text, p.message_base64, user_id, p.invalid_reason, '${topic.clickstream_users}',
  kafka_partition, kafka_offset, '${job}'
FROM clickstream_user_checked
WHERE p.invalid_reason IS NOT NULL;
