ALTER TABLE "jobs" ADD COLUMN "retention_seconds" integer;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "data_removed_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "jobs_expires_at_idx" ON "jobs" USING btree ("expires_at") WHERE "jobs"."expires_at" is not null and "jobs"."data_removed_at" is null;