/**
 * Child process of the designs phase: the BullMQ flow's workers. `generate` marks the job started
 * and adds a flow whose children store one output each and whose parent, run once they are all
 * done, finishes the job: the shape of the service's workflow, as a Node team would build it on
 * BullMQ. The outputs are the fake provider's images, stored with one PutObject each.
 *
 * Run by bench/designs/bullmq.ts; not meant to be run by hand.
 */
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { FlowProducer, Worker, type Job } from 'bullmq';
import { Pool } from 'pg';
import { renderImage } from '../../activities/providers/fake-provider';
import { benchS3Client } from '../large-output';
import { FINISH_JOB_SQL, START_JOB_SQL, STORE_OUTPUT_SQL } from './tables';
import { BULLMQ_QUEUES, BULLMQ_RETRIES, bullmqConnection, type BullmqWorkerJob, type DesignJobData } from './bullmq';

interface OutputData extends DesignJobData {
  index: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.env.BENCH_BULLMQ_WORKER ?? '{}') as BullmqWorkerJob;
  const connection = bullmqConnection(job.redisUrl);
  const prefix = job.prefix;
  const db = new Pool({ connectionString: job.databaseUrl, max: job.concurrency });
  const s3 = benchS3Client(job.s3);
  const flows = new FlowProducer({ connection, prefix });

  const workers = [
    new Worker<DesignJobData>(
      BULLMQ_QUEUES.generate,
      async (step: Job<DesignJobData>) => {
        const { jobId, numOutputs } = step.data;
        await db.query(START_JOB_SQL, [jobId]);
        await flows.add({
          name: 'finish',
          queueName: BULLMQ_QUEUES.finish,
          data: step.data,
          opts: BULLMQ_RETRIES,
          children: Array.from({ length: numOutputs }, (_, index) => ({
            name: 'persist',
            queueName: BULLMQ_QUEUES.persist,
            data: { ...step.data, index } satisfies OutputData,
            opts: BULLMQ_RETRIES,
          })),
        });
      },
      { connection, prefix, concurrency: job.concurrency },
    ),
    new Worker<OutputData>(
      BULLMQ_QUEUES.persist,
      async (step: Job<OutputData>) => {
        const { jobId, index, prompt, seed } = step.data;
        const bytes = await renderImage(prompt, seed, index, 'png');
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        await s3.send(
          new PutObjectCommand({
            Bucket: job.s3.bucket,
            Key: `designs/${jobId}/${index}.png`,
            Body: bytes,
            ContentType: 'image/png',
          }),
        );
        await db.query(STORE_OUTPUT_SQL, [jobId, index, bytes.length, sha256]);
      },
      { connection, prefix, concurrency: job.concurrency },
    ),
    new Worker<DesignJobData>(
      BULLMQ_QUEUES.finish,
      async (step: Job<DesignJobData>) => {
        await db.query(FINISH_JOB_SQL, [step.data.jobId]);
      },
      { connection, prefix, concurrency: job.concurrency },
    ),
  ];
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  process.stdout.write('ready\n');

  const stop = async () => {
    await Promise.all(workers.map((worker) => worker.close()));
    await flows.close();
    await db.end();
    s3.destroy();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`bullmq worker failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
