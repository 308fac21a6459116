import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../common/s3';
import { auditLedger, listObjects, SubmissionLedger } from '../support/ledger';
import { jobState, runMarker, waitForJobsToEnd } from '../support/faults';
import { sleep, waitFor } from '../support/wait';
import { useReplicateStack } from '../support/replicate-stack';
import type { StandInBehaviour } from '../support/replicate-stand-in';
import { validRequest } from '../support/stack';
import type { WorkerProcess } from '../support/worker-process';

const TOKEN = 'r8_fault-worker-kill-5e1c';
/** A killed worker's activities must be taken over within this long of a new worker being up. */
const RECOVERY_BOUND_MS = 30_000;
const RANDOM_RECOVERY_BOUND_MS = 45_000;
const MiB = 1024 * 1024;

/**
 * Fault family: the worker process dies (SIGKILL: no cleanup, no graceful shutdown) at each crash
 * point of a job, and a new one is started. The worker is a real child process (`tsx
 * worker/main.ts`) using the Replicate provider against the local stand-in, which counts the
 * predictions each job created; the API runs in this process. Heartbeat timeout 2 s.
 */
describe('faults: worker killed (SIGKILL) at each crash point', () => {
  // The API puts the heartbeat timeout into each workflow's input: a dead worker is noticed in 2 s.
  const stack = useReplicateStack({
    token: TOKEN,
    workers: 'processes',
    env: { ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '2' },
  });
  let worker: WorkerProcess;
  let s3: S3Client;
  const ledger = new SubmissionLedger(runMarker('worker-kill'));
  const figures = { kills: 0, recoveryMs: [] as number[], orphanPredictions: 0 };

  beforeAll(() => {
    s3 = createS3Client(stack.config);
    worker = stack.newWorkerProcess();
  });

  afterAll(() => {
    const recoveries = figures.recoveryMs.sort((a, b) => a - b);
    console.log(
      `[faults] worker kills: ${figures.kills} SIGKILLs survived, ${ledger.accepted.length} jobs, ` +
        `recovery after restart: median ${recoveries[Math.floor(recoveries.length / 2)] ?? '-'} ms, max ${recoveries.at(-1) ?? '-'} ms, ` +
        `orphaned predictions (create→record window): ${figures.orphanPredictions}`,
    );
  });

  async function ensureWorker(env: Record<string, string> = {}): Promise<void> {
    if (!worker.running) await worker.start(env);
  }

  /** SIGKILL, then a new worker (without any fault injection); returns when the new one polls. */
  async function killAndRestart(): Promise<{ killedAt: number; restartedAt: number }> {
    const killedAt = Date.now();
    await worker.kill('SIGKILL');
    expect(worker.running).toBe(false);
    figures.kills++;
    await worker.start();
    return { killedAt, restartedAt: Date.now() };
  }

  function promptOf(jobId: string): string {
    return ledger.accepted.find((entry) => entry.jobId === jobId)!.prompt;
  }

  function predictionsFor(jobId: string) {
    return stack.standIn.predictions.filter((prediction) => prediction.input.prompt === promptOf(jobId));
  }

  async function submit(request: Record<string, unknown>): Promise<string> {
    const reply = await ledger.submit(stack.baseUrl, { ...validRequest, ...request });
    expect(reply.status).toBe(202);
    return reply.jobId!;
  }

  /** Submits a job to the worker (started if it is not running), the stand-in behaving as `behaviour`. */
  async function submitToRunningWorker(behaviour: StandInBehaviour, request: Record<string, unknown>) {
    stack.standIn.behaviour = behaviour;
    await ensureWorker();
    return submit(request);
  }

  /** Submits a job to a new worker that stops at `point` (FAULT_INJECTION_PAUSE_AT); resolves once it has. */
  async function submitToWorkerPausedAt(point: 'after-upload' | 'after-create', request: Record<string, unknown>) {
    stack.standIn.behaviour = { runMs: 300 };
    await worker.kill('SIGKILL');
    await worker.start({ FAULT_INJECTION_PAUSE_AT: point });
    const jobId = await submit(request);
    await worker.waitForLog(new RegExp(`paused at ${point}`), 30_000);
    return jobId;
  }

  /** Every job COMPLETED within `boundMs` of the restart. */
  async function expectRecovered(jobIds: string[], restartedAt: number, boundMs = RECOVERY_BOUND_MS): Promise<void> {
    const ended = await waitForJobsToEnd(stack.database.pool, jobIds, boundMs + 30_000);
    for (const [jobId, { status, endedAt }] of ended) {
      const job = await jobState(stack.database.pool, jobId);
      if (status !== 'COMPLETED')
        console.log(
          `[faults] job ${jobId} ended ${status}: ${JSON.stringify(job)}\n${await historyOf(jobId)}\n${worker.output
            .filter((line) => !line.includes('"level":30'))
            .slice(-60)
            .join('\n')}`,
        );
      expect({ jobId, status, error: job?.error_message }).toEqual({ jobId, status: 'COMPLETED', error: null });
      expect(job?.media.map((row) => row.status)).toEqual(job?.media.map(() => 'COMPLETED'));
      figures.recoveryMs.push(Math.max(0, endedAt - restartedAt));
      if (endedAt - restartedAt > boundMs * 0.6)
        console.log(`[faults] slow recovery of ${jobId} (restart at ${restartedAt}):\n${await historyOf(jobId)}`);
      expect(endedAt - restartedAt).toBeLessThan(boundMs);
    }
  }

  async function historyOf(jobId: string): Promise<string> {
    const history = await stack.client.workflow.getHandle(`media-job-${jobId}`).fetchHistory();
    return history
      .events!.map((event) => {
        const at = Number(event.eventTime!.seconds) * 1000 + Math.round((event.eventTime!.nanos ?? 0) / 1e6);
        const detail =
          event.activityTaskScheduledEventAttributes?.activityType?.name ??
          event.activityTaskTimedOutEventAttributes?.failure?.message ??
          event.activityTaskFailedEventAttributes?.failure?.message ??
          (event.activityTaskStartedEventAttributes
            ? `attempt ${event.activityTaskStartedEventAttributes.attempt}`
            : '');
        return `${at} ${event.eventType} ${detail}`;
      })
      .join('\n');
  }

  async function expectBooksBalance(): Promise<void> {
    const summary = await auditLedger(ledger, { pool: stack.database.pool, s3, bucket: stack.config.S3_BUCKET_NAME });
    expect(summary.objects).toBe(summary.media);
    // A retried upload aborts the multipart upload its killed attempt left open.
    expect(summary.openMultipartUploads).toBe(0);
  }

  it('between an upload and its database write (FAULT_INJECTION_PAUSE_AT=after-upload)', async () => {
    const jobId = await submitToWorkerPausedAt('after-upload', { num_outputs: 2 });
    // The window: an object is in the bucket and no row says so yet.
    expect((await listObjects(s3, stack.config.S3_BUCKET_NAME, `jobs/${jobId}/`)).length).toBeGreaterThanOrEqual(1);
    expect((await jobState(stack.database.pool, jobId))!.media.map((row) => row.status)).not.toContain('COMPLETED');

    const { restartedAt } = await killAndRestart();
    await expectRecovered([jobId], restartedAt);
    expect(predictionsFor(jobId)).toHaveLength(1);
    await expectBooksBalance();
  }, 90_000);

  it('right after its prediction was created and recorded', async () => {
    const jobId = await submitToRunningWorker({ runMs: 4_000 }, { num_outputs: 2 });
    await waitFor(
      'the prediction id on record',
      async () => (await jobState(stack.database.pool, jobId))?.prediction_id ?? undefined,
      30_000,
      10,
    );

    const { restartedAt } = await killAndRestart();
    await expectRecovered([jobId], restartedAt);
    expect(predictionsFor(jobId)).toHaveLength(1);
    expect(stack.standIn.cancelRequests).not.toContain(predictionsFor(jobId)[0]!.id);
    await expectBooksBalance();
  }, 90_000);

  it('while its prediction runs', async () => {
    const jobId = await submitToRunningWorker({ runMs: 6_000 }, { num_outputs: 3 });
    const prediction = await waitFor('the prediction to be processing', () => {
      const [created] = predictionsFor(jobId);
      return created && stack.standIn.statusOf(created.id) === 'processing' ? created : undefined;
    });

    const { restartedAt } = await killAndRestart();
    await expectRecovered([jobId], restartedAt);
    expect(predictionsFor(jobId).map((created) => created.id)).toEqual([prediction.id]);
    await expectBooksBalance();
  }, 90_000);

  it('in the middle of an upload (12 MiB outputs, multipart)', async () => {
    const jobId = await submitToRunningWorker(
      { runMs: 300, outputBytes: 12 * MiB, outputBytesPerSecond: 4 * MiB },
      { num_outputs: 2 },
    );
    // A multipart upload exists once the first 5 MiB part is on its way: the object is half written.
    await waitFor(
      'a multipart upload in progress',
      async () => {
        const uploads = await s3.send(
          new ListMultipartUploadsCommand({ Bucket: stack.config.S3_BUCKET_NAME, Prefix: `jobs/${jobId}/` }),
        );
        return (uploads.Uploads?.length ?? 0) > 0;
      },
      30_000,
      50,
    );
    expect(await listObjects(s3, stack.config.S3_BUCKET_NAME, `jobs/${jobId}/`)).toEqual([]);

    const { restartedAt } = await killAndRestart();
    await expectRecovered([jobId], restartedAt);
    expect(predictionsFor(jobId)).toHaveLength(1);
    const objects = await listObjects(s3, stack.config.S3_BUCKET_NAME, `jobs/${jobId}/`);
    expect(objects.map((object) => object.size)).toEqual([12 * MiB, 12 * MiB]);
    await expectBooksBalance();
  }, 90_000);

  it('killed between the provider answering a create and the id being recorded (FAULT_INJECTION_PAUSE_AT=after-create): one orphan at most, bounded by Cancel-After', async () => {
    const jobId = await submitToWorkerPausedAt('after-create', { num_outputs: 1 });
    expect(predictionsFor(jobId)).toHaveLength(1);
    expect((await jobState(stack.database.pool, jobId))!.prediction_id).toBeNull();

    const { restartedAt } = await killAndRestart();
    await expectRecovered([jobId], restartedAt);
    // Replicate has no idempotent create: the retry cannot know the first prediction, so it makes a
    // second one. The first is the one orphan, and its Cancel-After deadline ends it.
    const [orphan, recorded] = predictionsFor(jobId);
    expect(predictionsFor(jobId)).toHaveLength(2);
    expect((await jobState(stack.database.pool, jobId))!.prediction_id).toBe(recorded!.id);
    expect(orphan!.cancelAfter).toMatch(/^\d+s$/);
    figures.orphanPredictions++;
    await expectBooksBalance();
  }, 90_000);

  it('at random moments during a run of 20 jobs (3 kills, 2-3 s apart)', async () => {
    const seed = Number(process.env.FAULT_SEED ?? Date.now() % 100_000);
    let state = seed;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    stack.standIn.behaviour = { runMs: 2_500, outputBytes: 1 * MiB, outputBytesPerSecond: 2 * MiB };
    await ensureWorker();

    const jobIds: string[] = [];
    // Submissions spread over the kills, so that kills land in every phase of some job.
    const submitting = (async () => {
      for (let i = 0; i < 20; i++) {
        jobIds.push(await submit({ num_outputs: 1 + (i % 3), seed: i }));
        await sleep(250 + random() * 500);
      }
    })();
    const kills: number[] = [];
    let restartedAt = Date.now();
    for (let i = 0; i < 3; i++) {
      await sleep(2_000 + random() * 1_000);
      const restart = await killAndRestart();
      console.log(`[faults] kill at ${restart.killedAt}, restarted at ${restart.restartedAt}`);
      kills.push(restart.killedAt);
      restartedAt = restart.restartedAt;
    }
    await submitting;

    const unfinishedAtLastRestart = (
      await stack.database.pool.query<{ id: string }>(
        `select id from jobs where id = any($1::uuid[]) and status not in ('COMPLETED', 'FAILED', 'CANCELLED')`,
        [jobIds],
      )
    ).rows.map((row) => row.id);
    // A random kill can also land in a short database activity (noticed by its 15 s start-to-close,
    // as it does not heartbeat) or in a workflow task (its 10 s timeout), and 20 jobs compete for
    // two cores: the bound is wider here, and still far below any activity's start-to-close.
    await expectRecovered(unfinishedAtLastRestart, restartedAt, RANDOM_RECOVERY_BOUND_MS);
    await waitForJobsToEnd(stack.database.pool, jobIds, 30_000);

    const extras: { jobId: string; cancelledByTheService: boolean; msBeforeTheNextKill?: number }[] = [];
    for (const jobId of jobIds) {
      const job = (await jobState(stack.database.pool, jobId))!;
      expect(job.status).toBe('COMPLETED');
      const predictions = predictionsFor(jobId);
      // Exactly one prediction per job is on record and was waited for.
      expect(predictions.filter((prediction) => prediction.id === job.prediction_id)).toHaveLength(1);
      for (const extra of predictions.filter((prediction) => prediction.id !== job.prediction_id)) {
        // The create may still have been in flight when its worker was killed (so it lands just after the kill).
        const fromKill = kills.map((killedAt) => killedAt - extra.createdAt).filter((ms) => ms > -1_000);
        extras.push({
          jobId,
          cancelledByTheService: stack.standIn.cancelRequests.includes(extra.id),
          msBeforeTheNextKill: fromKill.length > 0 ? Math.min(...fromKill) : undefined,
        });
      }
    }
    // A second one only in the documented windows: a kill fell between the provider's answer and the
    // record (the orphan), or a retry overlapped an attempt taken for dead and the service cancelled
    // the prediction it did not record.
    if (extras.length > 0) console.log(`[faults] second predictions: ${JSON.stringify(extras)}`);
    for (const extra of extras)
      expect(extra.cancelledByTheService || (extra.msBeforeTheNextKill ?? Infinity) < 5_000).toBe(true);
    figures.orphanPredictions += extras.filter((extra) => !extra.cancelledByTheService).length;
    await expectBooksBalance();
    console.log(`[faults] random kills (seed ${seed}): ${kills.length} kills over ${jobIds.length} jobs`);
  }, 150_000);
});
