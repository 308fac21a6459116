import { randomUUID } from 'node:crypto';
import { parseConfig } from '../../common/config';
import type { JobRow } from '../../db/schema';
import { policyOverrides, workflowInputFor } from '../../jobs/lifecycle';
import { activityPolicies } from '../../workflows/policies';

/** A job row as workflowInputFor reads it; the columns it does not read are left out. */
function jobRow(overrides: Partial<JobRow> = {}): JobRow {
  return {
    id: randomUUID(),
    status: 'PENDING',
    model: 'acme/painter',
    prompt: 'a lighthouse at dawn',
    numOutputs: 2,
    seed: 7,
    outputFormat: 'png',
    webhookUrl: null,
    webhookEvents: null,
    deadlineSeconds: null,
    batchId: null,
    ...overrides,
  } as JobRow;
}

describe("a job's workflow input", () => {
  it('carries the request and no more when the job asks for no webhook and no deadline', () => {
    const job = jobRow();
    expect(workflowInputFor(job, parseConfig({}))).toEqual({
      jobId: job.id,
      model: 'acme/painter',
      prompt: 'a lighthouse at dawn',
      numOutputs: 2,
      seed: 7,
      outputFormat: 'png',
      policies: {},
      inBatch: false,
    });
  });

  it('says whether the job belongs to a batch, so that its end looks for a batch webhook only then', () => {
    expect(workflowInputFor(jobRow({ batchId: randomUUID() }), parseConfig({})).inBatch).toBe(true);
  });

  it('carries the webhook (the default events unless the job chose some) and the deadline', () => {
    const url = 'https://receiver.example/hooks';
    expect(workflowInputFor(jobRow({ webhookUrl: url, deadlineSeconds: 30 }), parseConfig({}))).toMatchObject({
      webhook: { url, events: ['completed', 'failed', 'cancelled'] },
      deadlineSeconds: 30,
    });
    expect(workflowInputFor(jobRow({ webhookUrl: url, webhookEvents: ['output'] }), parseConfig({})).webhook).toEqual({
      url,
      events: ['output'],
    });
  });

  it("carries the configuration's policy overrides, which the workflow's policies then apply", () => {
    const config = parseConfig({
      GENERATE_MAX_ATTEMPTS: '3',
      PERSIST_MAX_ATTEMPTS: '2',
      PERSIST_BUDGET_SECONDS: '600',
      PREDICTION_WAIT_SECONDS: '40',
      ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '2',
      WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS: '1',
      PERSIST_LOCALLY_MAX_BYTES: '0',
    });
    const { policies } = workflowInputFor(jobRow(), config);
    expect(policies).toEqual({
      generateMaxAttempts: 3,
      persistMaxAttempts: 2,
      persistBudgetSeconds: 600,
      persistLocallyMaxBytes: 0,
      predictionWaitSeconds: 40,
      heartbeatTimeoutSeconds: 2,
      webhookInitialIntervalSeconds: 1,
    });
    const applied = activityPolicies(policies);
    expect(applied.createPrediction.retry!.maximumAttempts).toBe(3);
    expect(applied.persist).toMatchObject({ scheduleToCloseTimeout: '600s', heartbeatTimeout: '2s' });
    expect(applied.awaitPrediction.scheduleToCloseTimeout).toBe('40s');
    expect(applied.webhook.retry!.initialInterval).toBe('1s');
    // Unset, the policies keep their own defaults.
    expect(activityPolicies(policyOverrides(parseConfig({})))).toEqual(activityPolicies());
  });
});
