/** The spans of one job's trace, from the HTTP request through its workflow to its activities. */
export const JOB_TRACE_SPANS = [
  'POST /api/v1/generate',
  'StartWorkflow:mediaGeneration',
  'RunWorkflow:mediaGeneration',
  'RunActivity:startJobWithPrediction',
  'RunActivity:persistSmallOutput',
  'RunActivity:finishJob',
];
