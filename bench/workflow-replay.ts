import { randomUUID } from 'node:crypto';
import { promiseHooks } from 'node:v8';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { workflowIdForJob } from '../common/temporal';
import { bundleWorkflows } from '../worker/build-workflow-bundle';
import type { bareMediaShape } from './bare-workflow';
import type { JsonClient } from './http';
import { percentile, ratio, round } from './stats';

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;

export interface WorkflowReplayResult {
  replays: number;
  /** Events in each history: the service's job and the bare shape's, of the same outputs. */
  events: { service: number; bare: number };
  /** Milliseconds of this process's CPU per replay of one job's history (the median of five rounds). */
  cpuMsPerReplay: { service: number; bare: number };
  /** Promises the workflow code and the SDK's workflow runtime make per replay, in the sandbox. */
  sandboxPromisesPerReplay: { service: number; bare: number };
  /** service / bare: what the job's workflow code and its commands cost over the bare shape's. */
  ratio: number;
}

/**
 * The workflow side of a job alone: one finished job's history, and one of the bare shape's,
 * each replayed `replays` times through the SDK's workflow sandbox in this process (the same
 * reusable V8 context a worker runs workflow tasks in, with the SDK's Core replaying the
 * history), with no server, database or storage in the way. Its CPU moves with the workflow code
 * and the SDK's cost per activation and per promise, and with nothing else.
 */
export async function measureWorkflowReplay(options: {
  http: JsonClient;
  temporal: Client;
  bareTaskQueue: string;
  bareWorkflowCode: string;
  outputs: number;
  replays: number;
}): Promise<WorkflowReplayResult> {
  const { temporal } = options;
  const submitted = await options.http.request(
    'POST',
    '/api/v1/generate',
    { model: 'bench/fake', prompt: 'bench: one job to replay', num_outputs: options.outputs, seed: 1 },
    { Prefer: 'wait=60' },
  );
  if (submitted.status !== 202 || submitted.body.status !== 'COMPLETED')
    throw new Error(`the job to replay did not complete: ${submitted.status} ${JSON.stringify(submitted.body)}`);
  const serviceHandle = temporal.workflow.getHandle(workflowIdForJob(String(submitted.body.job_id)));
  await serviceHandle.result();
  const bareWorkflowId = `bench-bare-replay-${randomUUID()}`;
  await temporal.workflow.execute<typeof bareMediaShape>('bareMediaShape', {
    taskQueue: options.bareTaskQueue,
    workflowId: bareWorkflowId,
    args: [options.outputs],
  });
  const serviceHistory = await serviceHandle.fetchHistory();
  const bareHistory = await temporal.workflow.getHandle(bareWorkflowId).fetchHistory();

  const service = { code: await bundleWorkflows(), history: serviceHistory, cpuMs: [] as number[], promises: 0 };
  const bare = { code: options.bareWorkflowCode, history: bareHistory, cpuMs: [] as number[], promises: 0 };
  // The machine's speed drifts during a run: the two alternate in rounds, and each figure is the
  // median of its rounds, so that a slow spell weighs on both alike.
  const rounds = 5;
  const perRound = Math.max(1, Math.round(options.replays / rounds));
  for (const kind of [service, bare]) await replayMany(kind.code, kind.history, Math.max(5, perRound), 'warm-up');
  for (let index = 0; index < rounds; index++) {
    for (const kind of [service, bare]) {
      const measured = await replayMany(kind.code, kind.history, perRound, `round-${index}`);
      kind.cpuMs.push(measured.cpuMs / perRound);
      kind.promises = measured.sandboxPromises / perRound;
    }
  }
  const median = (values: number[]) =>
    round(
      percentile(
        [...values].sort((a, b) => a - b),
        0.5,
      ),
      2,
    );
  const serviceMs = median(service.cpuMs);
  const bareMs = median(bare.cpuMs);
  return {
    replays: perRound * rounds,
    events: { service: serviceHistory.events?.length ?? 0, bare: bareHistory.events?.length ?? 0 },
    cpuMsPerReplay: { service: serviceMs, bare: bareMs },
    sandboxPromisesPerReplay: { service: Math.round(service.promises), bare: Math.round(bare.promises) },
    ratio: ratio(serviceMs, bareMs),
  };
}

/**
 * Replays `history` `count` times: this process's CPU for them, and the promises made inside the
 * workflow sandbox (a V8 context of its own, so its promises have a Promise constructor other than
 * this realm's). The SDK records a stack trace for each of those: they are much of a workflow
 * task's cost.
 */
async function replayMany(
  code: string,
  history: History,
  count: number,
  label: string,
): Promise<{ cpuMs: number; sandboxPromises: number }> {
  const histories = Array.from({ length: count }, (_, index) => ({ workflowId: `${label}-${index}`, history }));
  let sandboxPromises = 0;
  const stopCounting = promiseHooks.createHook({
    init: (promise) => {
      if (promise.constructor !== Promise) sandboxPromises++;
    },
  });
  const before = process.cpuUsage();
  try {
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { code }, replayName: `bench-replay-${label}` },
      histories,
    )) {
      if (result.error) throw result.error;
    }
  } finally {
    stopCounting();
  }
  const used = process.cpuUsage(before);
  return { cpuMs: (used.user + used.system) / 1000, sandboxPromises };
}
