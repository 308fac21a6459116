import { randomUUID } from 'node:crypto';
import { eq, inArray, sql } from 'drizzle-orm';
import { mediaJobStatusSearchAttribute, workflowIdForJob } from '../../common/temporal';
import { finishJob } from '../../db/queries/jobs';
import { reopenFailedJob } from '../../db/queries/job-data';
import { endJobOutsideWorkflow } from '../../jobs/lifecycle';
import { reconcileUnfinishedJobs } from '../../activities/reconcile';
import { jobs } from '../../db/schema';
import { insertJobWithoutWorkflow, reconcileOnce, submitJob } from '../support/jobs';
import { ScriptedProvider } from '../support/scripted-provider';
import { postJson, silentLogger, waitForJob } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { sleep, waitFor } from '../support/wait';
import {
  TEST_WEBHOOK_SECRET,
  useWebhookReceivers,
  verifyWebhook,
  WEBHOOKS_TO_LOCAL_RECEIVERS,
  type WebhookReceiver,
} from '../support/webhooks';

/** The reconciler against real Temporal and Postgres: every stuck row, whatever Temporal's list says. */
describe('the reconciler', () => {
  const provider = new ScriptedProvider({ latencyMs: 120_000 });
  // A database of its own: its passes end only this file's rows, and no other stack's pass ends them.
  const stack = useTestStack({ provider, env: WEBHOOKS_TO_LOCAL_RECEIVERS, ownDatabase: true });
  const receivers = useWebhookReceivers();

  /** A job with a webhook to `receiver`, once its prediction runs. */
  async function runningJobWithWebhook(receiver: WebhookReceiver): Promise<string> {
    const jobId = await submitJob(stack, { webhook_url: receiver.url });
    await waitForJob(stack.baseUrl, jobId, (job) => job.status === 'PROCESSING' && provider.createdForJob(jobId) === 1);
    return jobId;
  }

  /** Resolves once the job's prediction was cancelled upstream. */
  async function predictionCancelled(jobId: string): Promise<void> {
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    await waitFor('the prediction to be cancelled', () => provider.cancelled.includes(row!.predictionId!), 15_000);
  }

  it('ends every unfinished row in one run, not only the first hundred', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 130; i++) ids.push(await insertJobWithoutWorkflow(stack.database.db));
    await reconcileOnce(stack);
    const rows = await stack.database.db.select({ status: jobs.status }).from(jobs).where(inArray(jobs.id, ids));
    expect(rows.filter((row) => row.status === 'FAILED')).toHaveLength(130);
  }, 60_000);

  it('goes on past a row it cannot judge now: the other rows are ended, that one waits for the next pass', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await insertJobWithoutWorkflow(stack.database.db));
    // Temporal fails for the first row the pass asks about, whichever it is.
    let failing: string | undefined;
    const flakyClient = new Proxy(stack.client, {
      get(target, property, receiver) {
        if (property !== 'workflow') return Reflect.get(target, property, receiver);
        return new Proxy(target.workflow, {
          get(workflows, name, workflowsReceiver) {
            if (name !== 'getHandle') return Reflect.get(workflows, name, workflowsReceiver);
            return (workflowId: string) => {
              const handle = workflows.getHandle(workflowId);
              failing ??= workflowId;
              if (workflowId !== failing) return handle;
              return { ...handle, describe: () => Promise.reject(new Error('Temporal is unavailable (scripted)')) };
            };
          },
        });
      },
    });
    await reconcileUnfinishedJobs({
      db: stack.database.db,
      temporal: flakyClient,
      logger: silentLogger,
      config: stack.config,
    });
    const rows = await stack.database.db
      .select({ id: jobs.id, status: jobs.status })
      .from(jobs)
      .where(inArray(jobs.id, ids));
    const pending = rows.filter((row) => row.status === 'PENDING').map((row) => workflowIdForJob(row.id));
    expect(pending.length).toBeLessThanOrEqual(1);
    expect(pending).toEqual(pending.length ? [failing] : []);
    expect(rows.filter((row) => row.status === 'FAILED').length).toBeGreaterThanOrEqual(11);
  });

  it('ends a row whose workflow closed although its search attribute says the job ended', async () => {
    const jobId = await insertJobWithoutWorkflow(stack.database.db);
    await stack.database.db.update(jobs).set({ status: 'PROCESSING' }).where(eq(jobs.id, jobId));
    // A workflow that recorded COMPLETED in Temporal and was then terminated before the row had it.
    const handle = await stack.client.workflow.start('mediaGeneration', {
      taskQueue: `no-worker-${randomUUID()}`,
      workflowId: workflowIdForJob(jobId),
      args: [{ jobId }],
      typedSearchAttributes: [{ key: mediaJobStatusSearchAttribute, value: 'COMPLETED' }],
    });
    await handle.terminate('lost its worker mid-finish');
    await reconcileOnce(stack);
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(row).toMatchObject({
      status: 'CANCELLED',
      errorMessage: 'The workflow was terminated: lost its worker mid-finish.',
    });
  });

  it("leaves a row that a retry reopened after its workflow closed to the retry's run, for a while", async () => {
    const jobId = await insertJobWithoutWorkflow(stack.database.db);
    const handle = await stack.client.workflow.start('mediaGeneration', {
      taskQueue: `no-worker-${randomUUID()}`,
      workflowId: workflowIdForJob(jobId),
      args: [{ jobId }],
    });
    await handle.terminate('the first run is over');
    // A retry reopens the row (PROCESSING again, as reopenFailedJob does), then starts its run under
    // the same workflow id: a pass between the two sees the first run closed.
    await stack.database.db.update(jobs).set({ status: 'PROCESSING' }).where(eq(jobs.id, jobId));
    await reconcileOnce(stack);
    const statusOf = async () =>
      (await stack.database.db.select({ status: jobs.status }).from(jobs).where(eq(jobs.id, jobId)))[0]!.status;
    expect(await statusOf()).toBe('PROCESSING');
    // A row reopened long before whose run never came is ended after all.
    await stack.database.db
      .update(jobs)
      .set({ updatedAt: sql`now() - interval '10 minutes'` })
      .where(eq(jobs.id, jobId));
    await reconcileOnce(stack);
    expect(await statusOf()).toBe('CANCELLED');
  });

  it('announces a terminated job with its terminal webhook, once, and cancels its prediction', async () => {
    const receiver = await receivers.start();
    const jobId = await runningJobWithWebhook(receiver);
    await stack.client.workflow.getHandle(workflowIdForJob(jobId)).terminate('operator gave up');
    await reconcileOnce(stack);
    await reconcileOnce(stack);
    const [message] = await receiver.waitFor(1);
    expect(message!.headers['webhook-id']).toBe(`msg_${jobId}_cancelled`);
    expect(verifyWebhook(TEST_WEBHOOK_SECRET, message!.headers, message!.body)).toBe(true);
    expect(JSON.parse(message!.body)).toMatchObject({ event: 'cancelled', job_id: jobId, status: 'CANCELLED' });
    await predictionCancelled(jobId);
    await sleep(1_000);
    expect(receiver.received).toHaveLength(1);
  });

  it('announces a job cancelled through the API after its workflow was gone, and cancels its prediction', async () => {
    const receiver = await receivers.start();
    const jobId = await runningJobWithWebhook(receiver);
    await stack.client.workflow.getHandle(workflowIdForJob(jobId)).terminate('gone');
    const cancelled = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, { reason: 'no longer needed' });
    expect(cancelled.status).toBe(202);
    const [message] = await receiver.waitFor(1);
    expect(JSON.parse(message!.body)).toMatchObject({
      event: 'cancelled',
      status: 'CANCELLED',
      error_message: 'no longer needed',
    });
    await predictionCancelled(jobId);
    // Its settle started at once: none is left due.
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(row!.settleDueAt).toBeNull();
  });
  it('announces the end of a job whose settle did not start when it was ended', async () => {
    const receiver = await receivers.start();
    const jobId = await runningJobWithWebhook(receiver);
    await stack.client.workflow.getHandle(workflowIdForJob(jobId)).terminate('gone');
    // Ended outside its workflow, and the process died (or Temporal refused) before the settle started.
    await finishJob(
      stack.database.db,
      jobId,
      { status: 'CANCELLED', errorMessage: 'its settle did not start' },
      {
        settleDue: true,
      },
    );
    await stack.database.db
      .update(jobs)
      .set({ settleDueAt: sql`now() - interval '2 minutes'` })
      .where(eq(jobs.id, jobId));
    await reconcileOnce(stack);
    const [message] = await receiver.waitFor(1);
    expect(JSON.parse(message!.body)).toMatchObject({ event: 'cancelled', job_id: jobId, status: 'CANCELLED' });
    await predictionCancelled(jobId);
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(row!.settleDueAt).toBeNull();
  });

  it("announces each lost retry's end in that retry's own message, after the first run's settle", async () => {
    const receiver = await receivers.start();
    const jobId = await insertJobWithoutWorkflow(stack.database.db);
    await stack.database.db.update(jobs).set({ webhookUrl: receiver.url }).where(eq(jobs.id, jobId));
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    // Its first run was lost too, and the job ended FAILED outside it: the first settle announces it.
    await endJobOutsideWorkflow({ db: stack.database.db, temporal: stack.client, config: stack.config }, row!, {
      status: 'FAILED',
      errorMessage: 'the first run was lost',
    });
    await receiver.waitFor(1);
    // Retried (POST …/retry reopens the row, then starts its run under the job's workflow id): the
    // first retry's run times out and is ended FAILED by the reconciler, the second's is terminated.
    const first = (await reopenFailedJob(stack.database.db, jobId, 60))!;
    const timedOut = await stack.client.workflow.start('retryFailedOutputs', {
      taskQueue: `no-worker-${randomUUID()}`,
      workflowId: workflowIdForJob(jobId),
      workflowExecutionTimeout: '1s',
      args: [{ jobId }],
    });
    await timedOut.result().catch(() => undefined);
    await reconcileOnce(stack);
    await receiver.waitFor(2);
    const second = (await reopenFailedJob(stack.database.db, jobId, 60))!;
    const terminated = await stack.client.workflow.start('retryFailedOutputs', {
      taskQueue: `no-worker-${randomUUID()}`,
      workflowId: workflowIdForJob(jobId),
      args: [{ jobId }],
    });
    await terminated.terminate('the retry was lost');
    await reconcileOnce(stack);
    const messages = await receiver.waitFor(3);
    expect(second.retryCount).toBeGreaterThan(first.retryCount);
    expect(messages.map((message) => message.headers['webhook-id'])).toEqual([
      `msg_${jobId}_failed`,
      `msg_${jobId}_retry_${first.retryCount}_failed`,
      `msg_${jobId}_retry_${second.retryCount}_cancelled`,
    ]);
    expect(JSON.parse(messages[2]!.body)).toMatchObject({
      event: 'cancelled',
      status: 'CANCELLED',
      error_message: 'The workflow was terminated: the retry was lost.',
    });
  });
});
