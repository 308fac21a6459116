import { createHash, randomBytes } from 'node:crypto';

const KEY_PREFIX = 'mgk';

export interface NewApiKey {
  /** Public: shown in listings and logs, and the scope of the key's jobs. */
  id: string;
  /** Secret: shown once, never stored. */
  key: string;
  keyHash: string;
}

/** A key of 256 random bits, `mgk_<id>_<secret>`; only its SHA-256 is stored (enough for a high-entropy key). */
export function generateApiKey(): NewApiKey {
  const idPart = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const key = `${KEY_PREFIX}_${idPart}_${secret}`;
  return { id: `key_${idPart}`, key, keyHash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
