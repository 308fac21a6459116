import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { Database } from '../client';
import type { JobPriority } from '../../common/priorities';
import { apiKeys, type ApiKeyRow } from '../schema';

export async function insertApiKey(
  db: Database,
  key: { id: string; name: string; keyHash: string; fairnessWeight?: number; maxPriority?: JobPriority },
): Promise<ApiKeyRow> {
  const [row] = await db.insert(apiKeys).values(key).returning();
  return row!;
}

/** The key's row when it exists and is not revoked. */
export async function findActiveApiKey(db: Database, keyHash: string): Promise<ApiKeyRow | undefined> {
  const [row] = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)));
  return row;
}

/** Revokes a key; returns false when no such key exists. Revoking twice keeps the first time. */
export async function revokeApiKey(db: Database, id: string): Promise<boolean> {
  const rows = await db
    .update(apiKeys)
    .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
    .where(eq(apiKeys.id, id))
    .returning({ id: apiKeys.id });
  return rows.length > 0;
}

export async function listApiKeys(db: Database): Promise<ApiKeyRow[]> {
  return db.select().from(apiKeys).orderBy(asc(apiKeys.createdAt));
}

/** Changes a key's fairness weight or most urgent priority; returns false when no such key exists. */
export async function updateApiKeyScheduling(
  db: Database,
  id: string,
  changes: { fairnessWeight?: number; maxPriority?: JobPriority },
): Promise<boolean> {
  const rows = await db.update(apiKeys).set(changes).where(eq(apiKeys.id, id)).returning({ id: apiKeys.id });
  return rows.length > 0;
}
