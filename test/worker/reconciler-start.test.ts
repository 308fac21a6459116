import { WorkflowNotFoundError } from '@temporalio/client';
import { reconcilerWorkflowId } from '../../common/temporal';
import { useTestStack } from '../support/use-stack';
import { WorkerProcess, workerProcessEnv } from '../support/worker-process';

/** `npm run worker` starts the reconciler on its task queue at start-up, unless told to leave it to others. */
describe('a worker process and the reconciler', () => {
  // No in-process worker; a database of its own, since the reconciler started here reads every unfinished row.
  const stack = useTestStack({ worker: false, ownDatabase: true });

  it('starts the reconciler on its task queue, and does not with RECONCILE_INTERVAL_SECONDS=0', async () => {
    const reconciler = stack.client.workflow.getHandle(reconcilerWorkflowId(stack.config.TEMPORAL_TASK_QUEUE));
    const leavesIt = new WorkerProcess(workerProcessEnv(stack.config, { RECONCILE_INTERVAL_SECONDS: '0' }));
    try {
      // start() resolves once the worker polls, which it does only after it has (or has not) started the reconciler.
      await leavesIt.start();
      await expect(reconciler.describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
      expect(leavesIt.output.some((line) => line.includes('does not start the reconciler'))).toBe(true);
    } finally {
      await leavesIt.stop();
    }

    const startsIt = new WorkerProcess(workerProcessEnv(stack.config, { RECONCILE_INTERVAL_SECONDS: '30' }));
    try {
      await startsIt.start();
      expect((await reconciler.describe()).status.name).toBe('RUNNING');
    } finally {
      await reconciler.terminate('test over').catch(() => undefined);
      await startsIt.stop();
    }
  }, 120_000);
});
