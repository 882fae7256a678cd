-- jobs: aggregates, lake
-- Replays must not count twice: a producer that retries, or a workload sent again, delivers
-- the same event_id more than once. The clean topic is an upsert by event_id and needs
-- nothing more; the windows, and the lake (19_lake.sql), keep only the first copy of each
-- event_id seen in the last ${dedup_ttl} (the state TTL of these jobs; window state is freed by
-- the watermark, and the daily sums of 17_daily_kpis.sql are exempt).
SET 'table.exec.state.ttl' = '${dedup_ttl}';

-- Valid events, each event_id once. Keeping the first row in processing-time order makes the
-- result insert-only and keeps `ts` an event-time attribute for the windows.
CREATE VIEW clickstream_unique_events AS
SELECT event_id, `date`, `day`, session_id, user_id, event, page_type, current_url, referrer, partner_id,
  partner_name, init_session, user_agent, ip, city, country, `language`, status, ts
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS copy_number
  FROM clickstream_valid_events
)
WHERE copy_number = 1;

-- Clean events (known users), each event_id once: the input of the per-user windows.
CREATE VIEW clickstream_unique_clean_events AS
SELECT * FROM clickstream_unique_events WHERE user_id IS NOT NULL;
