import { activitiesOfJob } from '../support/history';
import { submitJob } from '../support/jobs';
import { ScriptedProvider } from '../support/scripted-provider';
import { waitForJob, type TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { waitFor } from '../support/wait';

async function mediaRows(stack: TestStack, jobId: string) {
  const { rows } = await stack.database.pool.query<{
    status: string;
    attempts: number;
    failed_attempts: number;
  }>('select status, attempts, failed_attempts from media where job_id = $1 order by output_index', [jobId]);
  return rows;
}

/**
 * A small output is stored inside the workflow task by a local activity (persistSmallOutput): no
 * activity task on the server. What does not pass there on its first attempt goes to persistOutput,
 * the heartbeating activity with the long retry policy, which counts the local attempt.
 */
describe('storing small outputs', () => {
  describe('with the default limit (2 MiB)', () => {
    const provider = new ScriptedProvider();
    const stack = useTestStack({ provider, env: { PERSIST_MAX_ATTEMPTS: '3' } });

    it('stores each output in a local activity, with no activity task', async () => {
      const jobId = await submitJob(stack, { num_outputs: 3 });
      expect(await waitForJob(stack.baseUrl, jobId)).toMatchObject({ status: 'COMPLETED', retry_count: 0 });
      const ran = await activitiesOfJob(stack, jobId);
      expect(ran.tasks).toEqual([]);
      expect(ran.local.filter((type) => type === 'persistSmallOutput')).toHaveLength(3);
      expect(await mediaRows(stack, jobId)).toEqual(
        Array.from({ length: 3 }, () => ({ status: 'COMPLETED', attempts: 1, failed_attempts: 0 })),
      );
    });

    it('hands an output whose local attempt failed to persistOutput, which counts that attempt', async () => {
      provider.outputFailures.set(1, 1);
      const jobId = await submitJob(stack, { num_outputs: 2, prompt: 'a local attempt that fails once' });
      const job = await waitForJob(stack.baseUrl, jobId);
      expect(job).toMatchObject({ status: 'COMPLETED', retry_count: 1 });
      expect((await activitiesOfJob(stack, jobId)).tasks).toEqual(['persistOutput']);
      expect(await mediaRows(stack, jobId)).toEqual([
        { status: 'COMPLETED', attempts: 1, failed_attempts: 0 },
        { status: 'COMPLETED', attempts: 2, failed_attempts: 1 },
      ]);
    });

    it('hands an output whose source is too slow for the local attempt (3 s) to persistOutput, counting no failure', async () => {
      provider.outputHangs.add(0);
      const prompt = `a slow source ${Date.now()}`;
      const jobId = await submitJob(stack, { num_outputs: 1, prompt });
      // The local attempt waits on the source; the next one finds it answering.
      await waitFor('the local attempt to open the source', () =>
        provider.opened.some((url) => new URL(url).searchParams.get('prompt') === prompt),
      );
      provider.outputHangs.delete(0);
      expect(await waitForJob(stack.baseUrl, jobId)).toMatchObject({ status: 'COMPLETED', retry_count: 1 });
      expect((await activitiesOfJob(stack, jobId)).tasks).toEqual(['persistOutput']);
      expect(await mediaRows(stack, jobId)).toEqual([{ status: 'COMPLETED', attempts: 2, failed_attempts: 0 }]);
    });

    it('fails an output on its last own failure, the local attempt among them', async () => {
      provider.outputFailures.set(0, 3);
      const jobId = await submitJob(stack, { num_outputs: 1, prompt: 'an output that always fails' });
      const job = await waitForJob(stack.baseUrl, jobId);
      expect(job).toMatchObject({ status: 'FAILED' });
      expect(job.error_message).toMatch(/not ready \(scripted\)/);
      expect((await activitiesOfJob(stack, jobId)).tasks).toEqual(['persistOutput']);
      expect(await mediaRows(stack, jobId)).toEqual([{ status: 'FAILED', attempts: 3, failed_attempts: 3 }]);
    });
  });

  describe('with a limit below the outputs (PERSIST_LOCALLY_MAX_BYTES=100)', () => {
    const stack = useTestStack({ provider: new ScriptedProvider(), env: { PERSIST_LOCALLY_MAX_BYTES: '100' } });

    it('hands every output over unread, uncounted, to persistOutput', async () => {
      const jobId = await submitJob(stack, { num_outputs: 2 });
      expect(await waitForJob(stack.baseUrl, jobId)).toMatchObject({ status: 'COMPLETED', retry_count: 0 });
      const ran = await activitiesOfJob(stack, jobId);
      expect(ran.tasks).toEqual(['persistOutput', 'persistOutput']);
      expect(ran.local.filter((type) => type === 'persistSmallOutput')).toHaveLength(2);
      expect(await mediaRows(stack, jobId)).toEqual(
        Array.from({ length: 2 }, () => ({ status: 'COMPLETED', attempts: 1, failed_attempts: 0 })),
      );
    });
  });

  describe('with the local path off (PERSIST_LOCALLY_MAX_BYTES=0)', () => {
    const stack = useTestStack({ provider: new ScriptedProvider(), env: { PERSIST_LOCALLY_MAX_BYTES: '0' } });

    it('stores every output in persistOutput', async () => {
      const jobId = await submitJob(stack, { num_outputs: 2 });
      expect(await waitForJob(stack.baseUrl, jobId)).toMatchObject({ status: 'COMPLETED' });
      const ran = await activitiesOfJob(stack, jobId);
      expect(ran.tasks).toEqual(['persistOutput', 'persistOutput']);
      expect(ran.local).not.toContain('persistSmallOutput');
    });
  });
});
