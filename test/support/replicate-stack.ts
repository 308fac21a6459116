import { createProvider } from '../../activities/providers';
import { ReplicateStandIn } from './replicate-stand-in';
import { startTestStack, testConfig, type TestStack } from './stack';
import { useFixture } from './use-stack';
import { waitFor } from './wait';
import { WorkerProcess, workerProcessEnv } from './worker-process';

/** Configuration for the Replicate provider against the stand-in, which serves its outputs from 127.0.0.1. */
export function replicateStandInEnv(standIn: Pick<ReplicateStandIn, 'apiUrl' | 'token'>): Record<string, string> {
  return {
    MEDIA_GENERATOR_PROVIDER: 'replicate',
    REPLICATE_API_TOKEN: standIn.token,
    REPLICATE_BASE_URL: standIn.apiUrl,
    MEDIA_FETCH_ALLOW_PRIVATE: 'true',
  };
}

export interface ReplicateStackOptions {
  /** The API token the stand-in accepts. */
  token: string;
  env?: Record<string, string>;
  /**
   * `in-process` (the default): the stack's worker runs in this process on the Replicate provider.
   * `processes`: the stack has no worker; `newWorkerProcess()` starts real `npm run worker` processes.
   */
  workers?: 'in-process' | 'processes';
}

/** A test stack whose provider is Replicate, answered by the local stand-in. */
export interface ReplicateStack extends TestStack {
  standIn: ReplicateStandIn;
  /** A worker process on the stack's task queue, on the Replicate provider unless `env` says otherwise; killed when the stack stops. */
  newWorkerProcess(env?: Record<string, string>): WorkerProcess;
  /** The id of the stand-in's only prediction, once it runs upstream (`processing`). */
  onlyPredictionRunning(timeoutMs?: number): Promise<string>;
}

export async function startReplicateStack(options: ReplicateStackOptions): Promise<ReplicateStack> {
  const standIn = await ReplicateStandIn.start({ token: options.token });
  const env = { ...replicateStandInEnv(standIn), ...options.env };
  // The in-process worker's provider is built the way `npm run worker` builds it, from configuration.
  const stack =
    options.workers === 'processes'
      ? await startTestStack({ worker: false, env: options.env })
      : await startTestStack({ provider: createProvider(testConfig(env)), env });
  const processes: WorkerProcess[] = [];
  return {
    ...stack,
    standIn,
    newWorkerProcess(overrides = {}) {
      const worker = new WorkerProcess(
        workerProcessEnv(stack.config, { ...replicateStandInEnv(standIn), ...overrides }),
      );
      processes.push(worker);
      return worker;
    },
    onlyPredictionRunning(timeoutMs = 30_000) {
      return waitFor(
        'the one prediction to run upstream',
        () => {
          const [prediction, ...others] = standIn.predictions;
          return others.length === 0 && prediction && standIn.statusOf(prediction.id) === 'processing' && prediction.id;
        },
        timeoutMs,
      );
    },
    async stop() {
      for (const worker of processes) await worker.kill('SIGKILL');
      await stack.stop();
      await standIn.stop();
    },
  };
}

/** A Replicate stack for the enclosing describe. */
export function useReplicateStack(options: ReplicateStackOptions): ReplicateStack {
  return useFixture(() => startReplicateStack(options));
}
