import { setWorkflowOptions } from '@temporalio/workflow';
import { mediaGeneration } from '../../workflows';

/**
 * The workflows as they are, except that mediaGeneration is AUTO_UPGRADE: the control case of
 * test/worker/versioning.test.ts, which shows that the PINNED of workflows/versioning.ts is what
 * keeps a running job on the build it started on.
 */
export * from '../../workflows';

setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, mediaGeneration);
