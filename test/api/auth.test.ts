import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { apiKeys } from '../../db/schema';
import { createTestKey, readEvents } from '../support/public-api';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');

/** AUTH_MODE=required: keys on every /api route, and each key sees only its own jobs. No worker: jobs stay PENDING. */
describe('API keys (AUTH_MODE=required)', () => {
  const stack = useTestStack({ worker: false, env: { AUTH_MODE: 'required' } });
  let alice: Awaited<ReturnType<typeof createTestKey>>;
  let bob: Awaited<ReturnType<typeof createTestKey>>;
  beforeAll(async () => {
    alice = await createTestKey(stack.database.db, 'alice');
    bob = await createTestKey(stack.database.db, 'bob');
  });

  const apikey = (...args: string[]) =>
    run(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.join(ROOT, 'scripts', 'apikey.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: stack.config.DATABASE_URL, LOG_LEVEL: 'silent' },
    });

  it('answers 401 problems without a key, with a malformed header and with an unknown key', async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: 'Basic abc' },
      { authorization: 'Bearer mgk_000000000000_nope' },
    ];
    for (const headers of attempts) {
      const reply = await getJson(stack.baseUrl, '/api/v1/jobs', headers);
      expect(reply.status).toBe(401);
      expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(reply.body!.detail).toMatch(/key|Authorization/);
    }
    const submit = await postJson(stack.baseUrl, '/api/v1/generate', validRequest);
    expect(submit.status).toBe(401);
    // What is not under /api stays open.
    expect((await getJson(stack.baseUrl, '/healthz')).status).toBe(200);
    expect((await fetch(`${stack.baseUrl}/metrics`)).status).toBe(200);
  });

  it("hides one key's jobs from another: 404 on status, cancel, events and deliveries, and absent from lists", async () => {
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', validRequest, alice.auth);
    expect(submitted.status).toBe(202);
    const jobId = submitted.body!.job_id as string;

    expect((await getJson(stack.baseUrl, `/api/v1/status/${jobId}`, alice.auth)).status).toBe(200);
    const hidden = await getJson(stack.baseUrl, `/api/v1/status/${jobId}`, bob.auth);
    expect(hidden.status).toBe(404);
    expect(hidden.body!.detail).toBe(`There is no job with id '${jobId}'.`);
    expect((await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, {}, bob.auth)).status).toBe(404);
    expect((await getJson(stack.baseUrl, `/api/v1/jobs/${jobId}/webhook-deliveries`, bob.auth)).status).toBe(404);
    expect(
      (await readEvents(`${stack.baseUrl}/api/v1/jobs/${jobId}/events`, { headers: bob.auth, timeoutMs: 5_000 }))
        .status,
    ).toBe(404);

    const bobsList = await getJson(stack.baseUrl, '/api/v1/jobs?limit=100', bob.auth);
    expect(bobsList.body!.jobs.map((job: { job_id: string }) => job.job_id)).not.toContain(jobId);
    const alicesList = await getJson(stack.baseUrl, '/api/v1/jobs?limit=100', alice.auth);
    expect(alicesList.body!.jobs.map((job: { job_id: string }) => job.job_id)).toContain(jobId);

    // Bob's cancel changed nothing; Alice's is accepted.
    expect((await getJson(stack.baseUrl, `/api/v1/status/${jobId}`, alice.auth)).body!.status).toBe('PENDING');
    expect((await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, {}, alice.auth)).status).toBe(202);
  });

  it('scopes idempotency keys to the API key', async () => {
    const headers = (auth: Record<string, string>) => ({ ...auth, 'Idempotency-Key': 'shared-key-name' });
    const a = await postJson(stack.baseUrl, '/api/v1/generate', validRequest, headers(alice.auth));
    const b = await postJson(
      stack.baseUrl,
      '/api/v1/generate',
      { ...validRequest, prompt: 'something else' },
      headers(bob.auth),
    );
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body!.job_id).not.toBe(b.body!.job_id);
  });

  it('creates a key with `npm run apikey -- create` (the key alone on the last line) and revokes it', async () => {
    const created = await apikey('create', '--name', 'ci robot');
    const lines = created.stdout.trim().split('\n');
    const key = lines.at(-1)!;
    expect(key).toMatch(/^mgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const id = `key_${key.split('_')[1]}`;
    const [row] = await stack.database.db.select().from(apiKeys).where(eq(apiKeys.id, id));
    expect(row).toMatchObject({ name: 'ci robot', revokedAt: null });
    expect(row!.keyHash).not.toContain(key.split('_')[2]);

    const auth = { authorization: `Bearer ${key}` };
    expect((await getJson(stack.baseUrl, '/api/v1/jobs', auth)).status).toBe(200);
    const revoked = await apikey('revoke', id);
    expect(revoked.stdout).toContain(`Revoked API key ${id}`);
    expect((await getJson(stack.baseUrl, '/api/v1/jobs', auth)).status).toBe(401);
    await expect(apikey('revoke', 'key_doesnotexist')).rejects.toMatchObject({ code: 1 });
  });
});
