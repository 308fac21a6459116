ALTER TABLE "jobs" ADD COLUMN "retry_of" uuid;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "provider_outputs_expire_at" timestamp with time zone;