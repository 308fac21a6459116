import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { createBatch, dueWebhookOfJobBatch } from '../../db/queries/batches';
import { finishJob, markJobProcessing } from '../../db/queries/jobs';
import { batches } from '../../db/schema';
import { useDatabase } from '../support/use-stack';

const SIZE = 8;

/** A batch ends once, in the transaction of its last job's end, however many of its jobs end at once. */
describe('the end of a batch', () => {
  const database = useDatabase(SIZE + 2);

  const newBatch = async (webhookUrl?: string) => {
    const request = {
      model: 'a/b',
      prompt: `batch ${randomUUID()}`,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png' as const,
    };
    const { batch, jobs } = await createBatch(
      database.db,
      { owner: 'anonymous', requestHash: randomUUID(), webhookUrl },
      Array.from({ length: SIZE }, () => request),
    );
    for (const job of jobs) await markJobProcessing(database.db, job.id);
    return { batch, jobs };
  };
  const endedAt = async (batchId: string) =>
    (await database.db.select().from(batches).where(eq(batches.id, batchId)))[0]!.endedAt;

  it('is recorded when the last job ends, not before', async () => {
    const { batch, jobs } = await newBatch('https://example.com/hooks');
    for (const job of jobs.slice(0, -1)) await finishJob(database.db, job.id, { status: 'COMPLETED' });
    expect(await endedAt(batch.id)).toBeNull();
    expect(await dueWebhookOfJobBatch(database.db, jobs[0]!.id)).toBeUndefined();
    await finishJob(database.db, jobs.at(-1)!.id, { status: 'FAILED', errorMessage: 'scripted' });
    expect(await endedAt(batch.id)).toBeInstanceOf(Date);
    expect(await dueWebhookOfJobBatch(database.db, jobs[0]!.id)).toEqual({
      id: batch.id,
      webhookUrl: 'https://example.com/hooks',
    });
  });

  it('is recorded when all its jobs end at the same moment, in separate transactions', async () => {
    for (let round = 0; round < 10; round++) {
      const { batch, jobs } = await newBatch();
      await Promise.all(jobs.map((job) => finishJob(database.db, job.id, { status: 'COMPLETED' })));
      expect(await endedAt(batch.id)).toBeInstanceOf(Date);
    }
  });
});
