-- The announcement carries the event itself: "{job_id}:{seq}:{type}:{status}:{json}", the JSON
-- being {"at": <created_at in epoch milliseconds>, "data": <data>}. An event stream then writes a
-- change it heard without reading it back. An event too large for a notification (8000 bytes) is
-- announced without it, as before, and read. Readers of the older forms read the first fields only.
CREATE OR REPLACE FUNCTION announce_job_event() RETURNS trigger AS $$
DECLARE
  head text := NEW.job_id::text || ':' || NEW.seq::text || ':' || NEW.type || ':' ||
    CASE WHEN NEW.type = 'status' THEN coalesce(NEW.data->>'status', '') ELSE '' END;
  whole text := head || ':' || json_build_object(
    'at', floor(extract(epoch FROM NEW.created_at) * 1000)::bigint,
    'data', NEW.data
  )::text;
BEGIN
  PERFORM pg_notify('job_events', CASE WHEN octet_length(whole) < 8000 THEN whole ELSE head END);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
