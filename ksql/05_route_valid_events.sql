-- job: ingest
-- Write each valid event once, typed, for the enrichment and the windows to read.
INSERT INTO clickstream_valid
SELECT
  event_id, `date`, `day`, session_id, user_id, event, page_type, current_url, referrer, partner_id,
  partner_name, init_session, user_agent, ip, city, country, `language`, status
FROM clickstream_events;
