import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, type Worker } from '@temporalio/worker';
import { FakeProvider } from '../../activities/providers/fake-provider';
import type {
  GenerationRequest,
  MediaProvider,
  OutputStream,
  PredictionState,
} from '../../activities/providers/provider';
import { createS3Client } from '../../common/s3';
import { createPresigner } from '../../common/presigner';
import { workflowIdForJob } from '../../common/temporal';
import { createMediaWorker } from '../../worker/create-worker';
import { buildIdOfBundle, makeCurrentOncePolling } from '../../worker/versioning';
import { testServers } from '../support/servers';
import { closedWorkflowOf } from '../support/history';
import { submitJob, waitForPrediction } from '../support/jobs';
import { silentLogger, startTestStack, waitForJob, type TestStack } from '../support/stack';
import { WorkerProcess, workerProcessEnv } from '../support/worker-process';

/**
 * Worker Versioning on the real dev server (docs/operating.md, "Deploys"): a deploy of new workflow code
 * never replays a running job on code that does not match its history. Each scenario has its own
 * task queue and Worker Deployment; the workers run in this process, each with a provider of its
 * own, so the test sees which build's worker ran each job's activities.
 */

/** What every worker of a scenario shares: which jobs' predictions are held, and which build did what. */
class BuildLog {
  /** Prompts whose predictions stay `running` until released. */
  readonly held = new Set<string>();
  readonly events: { buildId: string; op: 'create' | 'open'; prompt: string }[] = [];
  private readonly promptOf = new Map<string, string>();

  /** The build ids whose workers did `op` for the job with this prompt. */
  workersThat(op: 'create' | 'open', prompt: string): string[] {
    return [
      ...new Set(
        this.events.filter((event) => event.op === op && event.prompt === prompt).map((event) => event.buildId),
      ),
    ];
  }

  record(buildId: string, op: 'create' | 'open', prompt: string, predictionId?: string): void {
    this.events.push({ buildId, op, prompt });
    if (predictionId) this.promptOf.set(predictionId, prompt);
  }

  isHeld(predictionId: string): boolean {
    return this.held.has(this.promptOf.get(predictionId) ?? '');
  }
}

/** The fake provider of the worker of one build id, reporting to the scenario's log. */
class BuildLogProvider implements MediaProvider {
  readonly name = 'fake';
  private readonly fake = new FakeProvider({ latencyMs: 0 });

  constructor(
    private readonly buildId: string,
    private readonly log: BuildLog,
  ) {}

  async createPrediction(request: GenerationRequest): Promise<string> {
    const id = await this.fake.createPrediction(request);
    this.log.record(this.buildId, 'create', request.prompt, id);
    return id;
  }

  async getPrediction(predictionId: string): Promise<PredictionState> {
    return this.log.isHeld(predictionId) ? { status: 'running' } : this.fake.getPrediction(predictionId);
  }

  async cancelPrediction(): Promise<void> {}

  async openOutput(url: string): Promise<OutputStream> {
    this.log.record(this.buildId, 'open', new URL(url).searchParams.get('prompt') ?? '');
    return this.fake.openOutput(url);
  }
}

interface VersionedWorker {
  buildId: string;
  stop(): Promise<void>;
}

/** A worker of version `buildId` of `deploymentName` on the stack's task queue, running `bundlePath`. */
async function startVersionedWorker(
  stack: TestStack,
  deploymentName: string,
  buildId: string,
  log: BuildLog,
  bundlePath: string,
): Promise<VersionedWorker> {
  const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  const s3 = createS3Client(stack.config);
  const worker: Worker = await createMediaWorker({
    connection,
    namespace: stack.config.TEMPORAL_NAMESPACE,
    taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
    workflowBundlePath: bundlePath,
    deploymentVersion: { deploymentName, buildId },
    activityDependencies: {
      db: stack.database.db,
      s3,
      bucket: stack.config.S3_BUCKET_NAME,
      provider: new BuildLogProvider(buildId, log),
      maxOutputBytes: stack.config.MEDIA_MAX_BYTES,
      logger: silentLogger,
      predictionPollIntervalMs: 100,
      temporal: stack.client,
      webhooks: { signingSecret: undefined, allowPrivate: false, presigner: createPresigner(stack.config, s3) },
    },
    tuning: { shutdownGraceTime: '1s' },
  });
  const run = worker.run();
  return {
    buildId,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await run.catch(() => undefined);
      await connection.close();
    },
  };
}

/** The versioning of a job's workflow as the server records it: its behaviour and the build id of its last completed workflow task. */
async function versioningOf(client: Client, jobId: string): Promise<{ behavior: string; buildId: string | undefined }> {
  const { raw } = await client.workflow.getHandle(workflowIdForJob(jobId)).describe();
  const info = raw.workflowExecutionInfo?.versioningInfo;
  const behavior = ['UNSPECIFIED', 'PINNED', 'AUTO_UPGRADE'][Number(info?.behavior ?? 0)]!;
  return { behavior, buildId: info?.deploymentVersion?.buildId ?? undefined };
}

/** The build id of each completed workflow task of the job's history, in order. */
async function workflowTaskBuildIds(client: Client, jobId: string): Promise<string[]> {
  const history = await client.workflow.getHandle(workflowIdForJob(jobId)).fetchHistory();
  return (history.events ?? []).flatMap((event) =>
    event.workflowTaskCompletedEventAttributes
      ? [event.workflowTaskCompletedEventAttributes.deploymentVersion?.buildId ?? 'unversioned']
      : [],
  );
}

async function currentBuildId(client: Client, deploymentName: string): Promise<string | undefined> {
  const { workerDeploymentInfo } = await client.workflowService.describeWorkerDeployment({
    namespace: 'default',
    deploymentName,
  });
  return workerDeploymentInfo?.routingConfig?.currentDeploymentVersion?.buildId ?? undefined;
}

/**
 * A rolling deploy: build A is current and a job runs on it; build B starts and becomes current;
 * a new job runs on B; then the first job finishes. Returns what each job ran on.
 */
async function rollingDeploy(bundlePath: string) {
  const log = new BuildLog();
  const deploymentName = `media-generation-test-${randomUUID().slice(0, 8)}`;
  const stack = await startTestStack({ worker: false });
  const workers: VersionedWorker[] = [];
  try {
    workers.push(await startVersionedWorker(stack, deploymentName, 'build-a', log, bundlePath));
    expect(await makeCurrentOncePolling(stack.client, 'default', { deploymentName, buildId: 'build-a' })).toMatchObject(
      { promotion: 'made-current' },
    );

    const first = `versioning first ${randomUUID()}`;
    log.held.add(first);
    const firstJob = await submitJob(stack, { prompt: first });
    await waitForPrediction(stack, firstJob);
    const firstBefore = await versioningOf(stack.client, firstJob);

    workers.push(await startVersionedWorker(stack, deploymentName, 'build-b', log, bundlePath));
    expect(await makeCurrentOncePolling(stack.client, 'default', { deploymentName, buildId: 'build-b' })).toMatchObject(
      { promotion: 'made-current', previous: 'build-a' },
    );
    expect(await currentBuildId(stack.client, deploymentName)).toBe('build-b');
    // A worker of the old build that restarts (and asks again) does not take the deployment back.
    expect(await makeCurrentOncePolling(stack.client, 'default', { deploymentName, buildId: 'build-a' })).toMatchObject(
      { promotion: 'superseded', previous: 'build-b' },
    );
    expect(await currentBuildId(stack.client, deploymentName)).toBe('build-b');

    const second = `versioning second ${randomUUID()}`;
    const secondJob = await submitJob(stack, { prompt: second });
    const secondDone = await waitForJob(stack.baseUrl, secondJob);
    await closedWorkflowOf(stack.client, secondJob);
    const firstWhileSecondDone = await waitForJob(stack.baseUrl, firstJob, () => true);

    log.held.delete(first);
    const firstDone = await waitForJob(stack.baseUrl, firstJob);
    await closedWorkflowOf(stack.client, firstJob);
    const figures = {
      first: {
        status: firstDone.status as string,
        statusWhileSecondRan: firstWhileSecondDone.status as string,
        before: firstBefore,
        after: await versioningOf(stack.client, firstJob),
        workflowTasks: await workflowTaskBuildIds(stack.client, firstJob),
        predictionCreatedBy: log.workersThat('create', first),
        outputsStoredBy: log.workersThat('open', first),
      },
      second: {
        status: secondDone.status as string,
        after: await versioningOf(stack.client, secondJob),
        workflowTasks: await workflowTaskBuildIds(stack.client, secondJob),
        predictionCreatedBy: log.workersThat('create', second),
        outputsStoredBy: log.workersThat('open', second),
      },
    };
    console.log(`worker versioning figures (${path.basename(bundlePath)}): ${JSON.stringify(figures)}`);
    return figures;
  } finally {
    for (const worker of workers.reverse()) await worker.stop();
    await stack.stop();
  }
}

describe('Worker Versioning', () => {
  it('keeps a running job on the build it started on while a new build takes the new jobs (mediaGeneration is PINNED)', async () => {
    const figures = await rollingDeploy(testServers().workflowBundlePath);
    expect(figures.first.before).toEqual({ behavior: 'PINNED', buildId: 'build-a' });
    expect(figures.first.statusWhileSecondRan).toBe('PROCESSING');
    expect(figures.first.status).toBe('COMPLETED');
    expect(figures.first.after).toEqual({ behavior: 'PINNED', buildId: 'build-a' });
    // Every workflow task of the first job, and every activity, ran on build A: its history was never replayed by B.
    expect(new Set(figures.first.workflowTasks)).toEqual(new Set(['build-a']));
    expect(figures.first.predictionCreatedBy).toEqual(['build-a']);
    expect(figures.first.outputsStoredBy).toEqual(['build-a']);

    expect(figures.second.status).toBe('COMPLETED');
    expect(figures.second.after).toEqual({ behavior: 'PINNED', buildId: 'build-b' });
    expect(new Set(figures.second.workflowTasks)).toEqual(new Set(['build-b']));
    expect(figures.second.predictionCreatedBy).toEqual(['build-b']);
    expect(figures.second.outputsStoredBy).toEqual(['build-b']);
  }, 90_000);

  it('would move the running job to the new build if mediaGeneration were AUTO_UPGRADE (the control case)', async () => {
    const bundlePath = path.join(testServers().workDir, `workflow-bundle-auto-upgrade-${randomUUID().slice(0, 8)}.js`);
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('../support/auto-upgrade-workflows'),
      logger: new DefaultLogger('WARN'),
    });
    writeFileSync(bundlePath, code);
    const figures = await rollingDeploy(bundlePath);
    expect(figures.first.before).toEqual({ behavior: 'AUTO_UPGRADE', buildId: 'build-a' });
    expect(figures.first.status).toBe('COMPLETED');
    // Its prediction was made on A; its next workflow task, and so its outputs, went to B.
    expect(figures.first.predictionCreatedBy).toEqual(['build-a']);
    expect(figures.first.outputsStoredBy).toEqual(['build-b']);
    expect(figures.first.after).toEqual({ behavior: 'AUTO_UPGRADE', buildId: 'build-b' });
    expect(figures.first.workflowTasks[0]).toBe('build-a');
    expect(figures.first.workflowTasks.at(-1)).toBe('build-b');
    expect(figures.second.after).toEqual({ behavior: 'AUTO_UPGRADE', buildId: 'build-b' });
  }, 120_000);

  it('npm run worker with WORKER_BUILD_ID=auto and WORKER_PROMOTE_ON_START=true names its version after the bundle and makes it current', async () => {
    const deploymentName = `media-generation-test-${randomUUID().slice(0, 8)}`;
    const stack = await startTestStack({ worker: false });
    const worker = new WorkerProcess(
      workerProcessEnv(stack.config, {
        WORKER_DEPLOYMENT_NAME: deploymentName,
        WORKER_BUILD_ID: 'auto',
        WORKER_PROMOTE_ON_START: 'true',
      }),
    );
    try {
      await worker.start();
      await worker.waitForLog(/is the current version of deployment/);
      const buildId = buildIdOfBundle(testServers().workflowBundlePath);
      expect(buildId).toMatch(/^[0-9a-f]{12}$/);
      expect(await currentBuildId(stack.client, deploymentName)).toBe(buildId);
      const jobId = await submitJob(stack, { prompt: `versioning process ${randomUUID()}` });
      expect((await waitForJob(stack.baseUrl, jobId)).status).toBe('COMPLETED');
      await closedWorkflowOf(stack.client, jobId);
      const versioning = await versioningOf(stack.client, jobId);
      const workflowTasks = await workflowTaskBuildIds(stack.client, jobId);
      expect({ ...versioning, workflowTasks: [...new Set(workflowTasks)] }).toEqual({
        behavior: 'PINNED',
        buildId,
        workflowTasks: [buildId],
      });
      console.log(`worker process: WORKER_BUILD_ID=auto resolved to ${buildId}; job ${jobId} ran on it`);
    } finally {
      await worker.stop();
      await stack.stop();
    }
  }, 90_000);
});
