-- Every recorded change of a job is announced on the channel job_events as "{job_id}:{seq}", at
-- commit: the API processes LISTEN on it (db/job-changes.ts) instead of polling the table.
CREATE OR REPLACE FUNCTION announce_job_event() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('job_events', NEW.job_id::text || ':' || NEW.seq::text);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER job_events_announce AFTER INSERT ON "job_events" FOR EACH ROW EXECUTE FUNCTION announce_job_event();
