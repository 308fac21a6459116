-- The announcement says what changed too: "{job_id}:{seq}:{type}:{status}", the status empty for
-- an output event. A process waiting for a job to end (Prefer: wait) then reads the job again only
-- when its status changed, not on every output stored. Readers of "{job_id}:{seq}" read on as before.
CREATE OR REPLACE FUNCTION announce_job_event() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify(
    'job_events',
    NEW.job_id::text || ':' || NEW.seq::text || ':' || NEW.type || ':' ||
      CASE WHEN NEW.type = 'status' THEN coalesce(NEW.data->>'status', '') ELSE '' END
  );
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
