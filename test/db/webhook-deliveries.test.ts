import { randomUUID } from 'node:crypto';
import { createJob } from '../../db/queries/jobs';
import { beginDeliveryAttempt, listDeliveries } from '../../db/queries/webhook-deliveries';
import { useDatabase } from '../support/use-stack';

/** The numbers of a message's attempts in webhook_deliveries (migration 0017). */
describe('webhook delivery attempts', () => {
  const database = useDatabase();

  it('numbers concurrent attempts at one message 1, 2, 3, … with no number taken twice', async () => {
    const job = await createJob(database.db, {
      model: 'a/b',
      prompt: `attempt numbers ${randomUUID()}`,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
    const messageId = `msg_${job.id}_completed`;
    // A redelivery beside the workflow's own retry, many times over: inserts that read one count.
    const rows = await Promise.all(
      Array.from({ length: 10 }, () =>
        beginDeliveryAttempt(database.db, {
          jobId: job.id,
          messageId,
          event: 'completed',
          url: 'https://receiver.example/hooks',
        }),
      ),
    );
    expect(rows.map((row) => row.attempt).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(await listDeliveries(database.db, job.id)).toHaveLength(10);
  });
});
