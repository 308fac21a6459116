ALTER TABLE "batches" ADD COLUMN "webhook_url" text;--> statement-breakpoint
ALTER TABLE "batches" ADD COLUMN "ended_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "batches" ADD COLUMN "webhook_started_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "batches_webhook_due_idx" ON "batches" USING btree ("ended_at") WHERE "batches"."webhook_url" is not null and "batches"."webhook_started_at" is null;