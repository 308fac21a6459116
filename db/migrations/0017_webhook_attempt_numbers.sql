-- Attempts numbered twice by concurrent inserts (a redelivery beside a retry) are numbered again, in the order they began, before the index makes each number unique. Workers of the release before may still insert meanwhile: the lock holds their inserts until the index is there.
LOCK TABLE "webhook_deliveries" IN SHARE ROW EXCLUSIVE MODE;--> statement-breakpoint
UPDATE "webhook_deliveries" AS "d" SET "attempt" = "r"."n"
FROM (SELECT "id", row_number() OVER (PARTITION BY "message_id" ORDER BY "attempt", "created_at", "id") AS "n" FROM "webhook_deliveries") AS "r"
WHERE "d"."id" = "r"."id" AND "d"."attempt" <> "r"."n";--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_message_id_attempt_idx" ON "webhook_deliveries" USING btree ("message_id","attempt");
