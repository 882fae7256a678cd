-- job: enrich
-- User profiles from the compacted topic clickstream_users, keyed by user_id: the latest
-- profile of each user wins. It is the table side of the clean events' enrichment.
CREATE TABLE clickstream_users (
  user_id STRING,
  signup_date BIGINT,
  home_city STRING,
  segment STRING,
  updated_at BIGINT,
  PRIMARY KEY (user_id) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${topic.clickstream_users}',
  'properties.bootstrap.servers' = '${bootstrap_servers}',
  'properties.group.id' = '${group_id}',
  'key.format' = 'raw',
  'value.format' = 'json',
  'value.fields-include' = 'ALL'
);
