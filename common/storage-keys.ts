import type { OutputFormat } from './statuses';

/**
 * The one place object keys are derived: from the job and output index only, never from a URL
 * or user text, so a retried upload overwrites the same object instead of adding another.
 */
export function mediaObjectKey(jobId: string, outputIndex: number, format: OutputFormat): string {
  return `jobs/${jobId}/output-${outputIndex}.${format}`;
}
