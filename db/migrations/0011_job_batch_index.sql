DROP INDEX "jobs_batch_id_idx";--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "batch_index" integer;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_batch_id_batch_index_idx" ON "jobs" USING btree ("batch_id","batch_index") WHERE "jobs"."batch_id" is not null;