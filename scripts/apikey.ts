/**
 * API keys for AUTH_MODE=required.
 *
 *   npm run apikey -- create --name NAME [--weight W] [--max-priority P]
 *                                          prints the key's id, then the key itself alone on the last line
 *   npm run apikey -- set KEY_ID [--weight W] [--max-priority P]
 *                                          changes them; jobs submitted from then on use the new values
 *   npm run apikey -- revoke KEY_ID        the key stops working at once
 *   npm run apikey -- list                 ids, names, weights, priorities, creation and revocation times
 *
 * --weight is the key's share of the workers against other keys with work waiting (default 1: a key
 * of weight 3 gets three tasks dispatched for every one of a key of weight 1); --max-priority the most
 * urgent `priority` its requests may ask for (high, normal or low; default normal).
 *
 * Only a SHA-256 of each key is stored: a lost key cannot be shown again, only revoked and replaced.
 */
import { parseArgs } from 'node:util';
import { generateApiKey } from '../common/api-keys';
import { loadConfigOrExit } from '../common/config';
import { FAIRNESS_WEIGHT_RANGE, JOB_PRIORITIES, type JobPriority } from '../common/priorities';
import { createDatabase } from '../db/client';
import { insertApiKey, listApiKeys, revokeApiKey, updateApiKeyScheduling } from '../db/queries/api-keys';

const USAGE =
  'usage: npm run apikey -- create --name NAME [--weight W] [--max-priority high|normal|low] | set KEY_ID [--weight W] [--max-priority P] | revoke KEY_ID | list';

/** The scheduling options given, checked; a string names what is wrong. */
function schedulingOptions(values: {
  weight?: string;
  'max-priority'?: string;
}): { fairnessWeight?: number; maxPriority?: JobPriority } | string {
  const options: { fairnessWeight?: number; maxPriority?: JobPriority } = {};
  if (values.weight !== undefined) {
    const weight = Number(values.weight);
    if (!Number.isFinite(weight) || weight < FAIRNESS_WEIGHT_RANGE.min || weight > FAIRNESS_WEIGHT_RANGE.max)
      return `--weight must be a number from ${FAIRNESS_WEIGHT_RANGE.min} to ${FAIRNESS_WEIGHT_RANGE.max}`;
    options.fairnessWeight = weight;
  }
  const maxPriority = values['max-priority'];
  if (maxPriority !== undefined) {
    if (!(JOB_PRIORITIES as readonly string[]).includes(maxPriority))
      return `--max-priority must be one of ${JOB_PRIORITIES.join(', ')}`;
    options.maxPriority = maxPriority as JobPriority;
  }
  return options;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { name: { type: 'string' }, weight: { type: 'string' }, 'max-priority': { type: 'string' } },
    allowPositionals: true,
  });
  const [command, ...rest] = positionals;
  const scheduling = schedulingOptions(values);
  if (typeof scheduling === 'string') {
    console.error(`${scheduling}\n${USAGE}`);
    return 64;
  }
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
        const row = await insertApiKey(database.db, { id: key.id, name, keyHash: key.keyHash, ...scheduling });
        console.log(
          `Created API key ${key.id} (${name}, weight ${row.fairnessWeight}, max priority ${row.maxPriority}). Send it as "Authorization: Bearer <key>"; it is shown only once:`,
        );
        console.log(key.key);
        return 0;
      }
      case 'set': {
        const id = rest[0];
        if (!id || Object.keys(scheduling).length === 0) {
          console.error(`a KEY_ID and --weight or --max-priority are required\n${USAGE}`);
          return 64;
        }
        if (!(await updateApiKeyScheduling(database.db, id, scheduling))) {
          console.error(`there is no API key ${id}`);
          return 1;
        }
        console.log(`Updated API key ${id}: ${JSON.stringify(scheduling)}; jobs submitted from now on use it.`);
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
            `${key.id}\t${key.name}\tweight ${key.fairnessWeight}\tmax priority ${key.maxPriority}\tcreated ${key.createdAt.toISOString()}\t${key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active'}`,
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
