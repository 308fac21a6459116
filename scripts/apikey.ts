/**
 * API keys for AUTH_MODE=required.
 *
 *   npm run apikey -- create --name NAME   prints the key's id, then the key itself alone on the last line
 *   npm run apikey -- revoke KEY_ID        the key stops working at once
 *   npm run apikey -- list                 ids, names, creation and revocation times
 *
 * Only a SHA-256 of each key is stored: a lost key cannot be shown again, only revoked and replaced.
 */
import { parseArgs } from 'node:util';
import { generateApiKey } from '../common/api-keys';
import { loadConfigOrExit } from '../common/config';
import { createDatabase } from '../db/client';
import { insertApiKey, listApiKeys, revokeApiKey } from '../db/queries/api-keys';

const USAGE = 'usage: npm run apikey -- create --name NAME | revoke KEY_ID | list';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { name: { type: 'string' } },
    allowPositionals: true,
  });
  const [command, ...rest] = positionals;
  const config = loadConfigOrExit();
  const database = createDatabase({ url: config.DATABASE_URL, poolSize: 1 });
  try {
    switch (command) {
      case 'create': {
        const name = values.name?.trim();
        if (!name) {
          console.error(`--name is required\n${USAGE}`);
          return 64;
        }
        const key = generateApiKey();
        await insertApiKey(database.db, { id: key.id, name, keyHash: key.keyHash });
        console.log(
          `Created API key ${key.id} (${name}). Send it as "Authorization: Bearer <key>"; it is shown only once:`,
        );
        console.log(key.key);
        return 0;
      }
      case 'revoke': {
        const id = rest[0];
        if (!id) {
          console.error(`a KEY_ID is required\n${USAGE}`);
          return 64;
        }
        if (!(await revokeApiKey(database.db, id))) {
          console.error(`there is no API key ${id}`);
          return 1;
        }
        console.log(`Revoked API key ${id}.`);
        return 0;
      }
      case 'list': {
        for (const key of await listApiKeys(database.db)) {
          console.log(
            `${key.id}\t${key.name}\tcreated ${key.createdAt.toISOString()}\t${key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active'}`,
          );
        }
        return 0;
      }
      default:
        console.error(USAGE);
        return 64;
    }
  } finally {
    await database.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('apikey failed:', error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
