/**
 * The request's `priority` and each key's fairness: what the API accepts and refuses, what it
 * records and answers, and the Temporal priority each workflow starts with. No worker: the jobs stay
 * PENDING, and their workflows are read with describe().
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { generateApiKey } from '../../common/api-keys';
import type { JobPriority } from '../../common/priorities';
import { workflowIdForJob } from '../../common/temporal';
import { insertApiKey } from '../../db/queries/api-keys';
import { apiKeys } from '../../db/schema';
import { getJson, postJson, startTestStack, validRequest, type TestStack } from '../support/stack';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');

async function createKey(stack: TestStack, options: { weight?: number; maxPriority?: JobPriority } = {}) {
  const key = generateApiKey();
  await insertApiKey(stack.database.db, {
    id: key.id,
    name: 'priority test',
    keyHash: key.keyHash,
    fairnessWeight: options.weight,
    maxPriority: options.maxPriority,
  });
  return { id: key.id, auth: { authorization: `Bearer ${key.key}` } };
}

async function submit(stack: TestStack, auth: Record<string, string>, fields: Record<string, unknown> = {}) {
  return postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, ...fields }, auth);
}

describe('priority and fairness keys (AUTH_MODE=required)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ worker: false, env: { AUTH_MODE: 'required' } });
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('starts each workflow with its priority key and the key as fairness key, with its weight', async () => {
    const key = await createKey(stack, { weight: 3, maxPriority: 'high' });
    const expected: Record<JobPriority, number> = { high: 1, normal: 3, low: 5 };
    for (const priority of ['high', 'normal', 'low', undefined] as const) {
      const reply = await submit(stack, key.auth, priority ? { priority } : {});
      expect(reply.status).toBe(202);
      const description = await stack.client.workflow.getHandle(reply.body!.workflow_id as string).describe();
      expect(description.priority).toEqual({
        priorityKey: expected[priority ?? 'normal'],
        fairnessKey: key.id,
        fairnessWeight: 3,
      });
      expect(await description.staticSummary()).toMatch(new RegExp(`priority ${priority ?? 'normal'}$`));
      const status = await getJson(stack.baseUrl, `/api/v1/status/${reply.body!.job_id}`, key.auth);
      expect(status.body!.priority).toBe(priority ?? 'normal');
    }
  });

  it("refuses a priority above the key's --max-priority with 403, and accepts what it allows", async () => {
    const key = await createKey(stack);
    const refused = await submit(stack, key.auth, { priority: 'high' });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body!.detail).toContain(`npm run apikey -- set ${key.id} --max-priority high`);
    expect((await submit(stack, key.auth, { priority: 'normal' })).status).toBe(202);
    expect((await submit(stack, key.auth, { priority: 'low' })).status).toBe(202);
  });

  it('refuses a priority that is not high, normal or low (422)', async () => {
    const key = await createKey(stack, { maxPriority: 'high' });
    for (const priority of ['urgent', 1, null, 'HIGH']) {
      const reply = await submit(stack, key.auth, { priority });
      expect(reply.status).toBe(422);
      expect(reply.body!.errors).toEqual([{ field: 'priority', message: expect.any(String) }]);
    }
  });

  it('lists jobs by priority', async () => {
    const key = await createKey(stack, { maxPriority: 'high' });
    const ids: Record<string, string> = {};
    for (const priority of ['high', 'low', 'normal'] as const)
      ids[priority] = (await submit(stack, key.auth, { priority })).body!.job_id as string;
    for (const priority of ['high', 'low', 'normal'] as const) {
      const list = await getJson(stack.baseUrl, `/api/v1/jobs?priority=${priority}`, key.auth);
      expect(list.status).toBe(200);
      expect(list.body!.jobs.map((job: { job_id: string }) => job.job_id)).toEqual([ids[priority]]);
      expect(list.body!.jobs[0].priority).toBe(priority);
    }
    expect((await getJson(stack.baseUrl, '/api/v1/jobs?priority=urgent', key.auth)).status).toBe(422);
    expect((await getJson(stack.baseUrl, '/api/v1/jobs', key.auth)).body!.jobs).toHaveLength(3);
  });

  it('counts the more urgent PENDING jobs ahead of a job, whenever they came', async () => {
    const key = await createKey(stack, { maxPriority: 'high' });
    const ids: string[] = [];
    for (const priority of ['normal', 'high', 'low'] as const)
      ids.push((await submit(stack, key.auth, { priority })).body!.job_id as string);
    const [normal, high, low] = (
      await Promise.all(ids.map((id) => getJson(stack.baseUrl, `/api/v1/status/${id}`, key.auth)))
    ).map((reply) => reply.body!.queue_position as number);
    expect(high).toBeLessThan(normal!);
    expect(normal).toBeLessThan(low!);
  });

  it('sets weights and priorities with npm run apikey (create, set, list), refusing what Temporal would not take', async () => {
    const apikey = (...args: string[]) =>
      run(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.join(ROOT, 'scripts', 'apikey.ts'), ...args], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: stack.config.DATABASE_URL, LOG_LEVEL: 'silent' },
      });
    const created = await apikey('create', '--name', 'weighted', '--weight', '3', '--max-priority', 'high');
    const id = `key_${created.stdout.trim().split('\n').at(-1)!.split('_')[1]}`;
    const row = async () => (await stack.database.db.select().from(apiKeys).where(eq(apiKeys.id, id)))[0]!;
    expect(await row()).toMatchObject({ fairnessWeight: 3, maxPriority: 'high' });

    await apikey('set', id, '--weight', '0.5', '--max-priority', 'low');
    expect(await row()).toMatchObject({ fairnessWeight: 0.5, maxPriority: 'low' });
    expect((await apikey('list')).stdout).toMatch(new RegExp(`${id}\\tweighted\\tweight 0.5\\tmax priority low`));

    for (const args of [
      ['create', '--name', 'x', '--weight', '0'],
      ['create', '--name', 'x', '--weight', '1001'],
      ['create', '--name', 'x', '--weight', 'heavy'],
      ['create', '--name', 'x', '--max-priority', 'urgent'],
      ['set', id],
    ])
      await expect(apikey(...args)).rejects.toMatchObject({ code: 64 });
    await expect(apikey('set', 'key_doesnotexist', '--weight', '2')).rejects.toMatchObject({ code: 1 });
  });
});

describe('priority and fairness keys (AUTH_MODE=off)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ worker: false });
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('gives each client address its own fairness key of weight 1, and any priority', async () => {
    const reply = await submit(stack, {}, { priority: 'high' });
    expect(reply.status).toBe(202);
    const description = await stack.client.workflow.getHandle(workflowIdForJob(reply.body!.job_id)).describe();
    expect(description.priority).toEqual({ priorityKey: 1, fairnessKey: 'address:127.0.0.1', fairnessWeight: 1 });
  });
});
