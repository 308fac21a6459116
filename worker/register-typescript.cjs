// Runs the worker's TypeScript sources through tsx in the main thread only. The SDK's workflow
// threads inherit the process's flags, and tsx turns Node's source maps on wherever it loads:
// every promise a workflow makes records its stack (the SDK's `__stack_trace` query), and each
// capture would then pay for source maps too. The SDK maps the workflow bundle's frames itself.
const { isMainThread } = require('node:worker_threads');

if (isMainThread) require('tsx/cjs');
