import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { OutputFormat, TerminalStatus } from './statuses';
import type { WebhookEvent } from './webhooks';

export const MEDIA_GENERATION_WORKFLOW_TYPE = 'mediaGeneration';
export const RECONCILE_WORKFLOW_TYPE = 'reconcileJobs';
/** The Schedule that ran the reconciler before it was one long-lived workflow; workers delete it. */
export const LEGACY_RECONCILE_SCHEDULE_ID = 'media-jobs-reconciler';
export const REDELIVER_WEBHOOK_WORKFLOW_TYPE = 'redeliverWebhook';
export const SETTLE_ORPHANED_JOB_WORKFLOW_TYPE = 'settleOrphanedJob';
export const REMOVE_EXPIRED_MEDIA_WORKFLOW_TYPE = 'removeExpiredMedia';
export const RETRY_FAILED_OUTPUTS_WORKFLOW_TYPE = 'retryFailedOutputs';
export const BATCH_ENDED_WEBHOOK_WORKFLOW_TYPE = 'batchEndedWebhook';

/** A batch's webhook, sent once every job of it has ended; one workflow per batch. */
export interface BatchWebhookMessage {
  batchId: string;
  messageId: string;
  url: string;
}

export interface BatchEndedWebhookInput {
  message: BatchWebhookMessage;
  policies?: ActivityPolicyOverrides;
}

export function batchWebhookWorkflowId(batchId: string): string {
  return `batch-webhook-${batchId}`;
}

/** The batch webhook's webhook-id: one message per batch. */
export function batchWebhookMessageId(batchId: string): string {
  return `msg_batch_${batchId}_ended`;
}

/** A FAILED job stored again: only its failed outputs, from the prediction's recorded URLs (no new prediction). */
export interface RetryFailedOutputsInput {
  jobId: string;
  numOutputs: number;
  outputFormat: OutputFormat;
  outputs: Array<{ index: number; sourceUrl: string }>;
  /** What finishJob adds to the outputs' own retries so that retry_count keeps its earlier count plus this retry. */
  baseRetries: number;
  /** The job's retry_count with this retry: its webhook messages are this retry's own (webhookMessageId). */
  retryCount?: number;
  webhook?: WebhookTarget;
  policies?: ActivityPolicyOverrides;
}
/** The retention Schedule of a task queue: runs removeExpiredMedia every MEDIA_RETENTION_SWEEP_SECONDS. */
export function retentionScheduleId(taskQueue: string): string {
  return `media-retention-${taskQueue}`;
}
/** The reconciler: one long-lived workflow per task queue that continues as new. */
export function reconcilerWorkflowId(taskQueue: string): string {
  return `reconciler-${taskQueue}`;
}

export const mediaJobStatusSearchAttribute = defineSearchAttributeKey('MediaJobStatus', SearchAttributeType.KEYWORD);

export function workflowIdForJob(jobId: string): string {
  return `media-job-${jobId}`;
}

/** PERSIST_LOCALLY_MAX_BYTES unset: outputs that announce up to 2 MiB (most images) are stored by a local activity first. */
export const DEFAULT_PERSIST_LOCALLY_MAX_BYTES = 2 * 1024 * 1024;

/** Overrides of the named activity policies, taken from configuration when a job starts. */
export interface ActivityPolicyOverrides {
  generateMaxAttempts?: number;
  /** Failures of an output's own (source, storage) before it fails; worker deaths do not count. */
  persistMaxAttempts?: number;
  /** How long an output may take to store, interruptions included (schedule-to-close). */
  persistBudgetSeconds?: number;
  /** Outputs that announce at most this many bytes are first stored by a local activity; 0: never. */
  persistLocallyMaxBytes?: number;
  /** How long the job waits for its prediction, worker restarts included (schedule-to-close). */
  predictionWaitSeconds?: number;
  heartbeatTimeoutSeconds?: number;
  /** First retry delay of webhook deliveries (tests shorten it). */
  webhookInitialIntervalSeconds?: number;
}

/** Where and for what the job's webhooks go; the signing secret stays in the worker. */
export interface WebhookTarget {
  url: string;
  events: WebhookEvent[];
}

/** One webhook message; every attempt at it carries the same id (the webhook-id header). */
export interface WebhookMessage {
  jobId: string;
  messageId: string;
  event: WebhookEvent;
  url: string;
  outputIndex?: number;
}

/**
 * The webhook-id of a job's message: `msg_{job}_{event}[_{output}]`; a retry's messages (POST
 * …/retry) are its own, `msg_{job}_retry_{n}_{event}[_{output}]`, so that a receiver that drops
 * duplicate ids still hears that the retry ended, FAILED again included.
 */
export function webhookMessageId(jobId: string, event: WebhookEvent, outputIndex?: number, retry?: number): string {
  const retryPart = retry === undefined ? '' : `_retry_${retry}`;
  return `msg_${jobId}${retryPart}_${event}${outputIndex === undefined ? '' : `_${outputIndex}`}`;
}

/**
 * A job ended outside its workflow (terminated, timed out, never started, cancelled through the API
 * after its workflow was gone): its prediction is cancelled and its end announced, once.
 */
export interface SettleOrphanedJobInput {
  jobId: string;
  status: TerminalStatus;
  /** The retry (POST …/retry) whose run was lost, if it was one: its end is announced in that retry's messages. */
  retry?: number;
  webhook?: WebhookTarget;
  policies?: ActivityPolicyOverrides;
}

/** One settle per run of a job: its first run's, then each retry's (`orphaned-job-{job}-retry-{n}`). */
export function settleOrphanedJobWorkflowId(jobId: string, retry?: number): string {
  return `orphaned-job-${jobId}${retry === undefined ? '' : `-retry-${retry}`}`;
}

export interface ReconcilerInput {
  intervalSeconds: number;
}

export interface RedeliverWebhookInput {
  message: WebhookMessage;
  policies?: ActivityPolicyOverrides;
}

/** Everything the workflow needs; no secrets and no media bytes (histories are stored). */
export interface MediaGenerationInput {
  jobId: string;
  model: string;
  prompt: string;
  numOutputs: number;
  seed: number;
  outputFormat: OutputFormat;
  policies?: ActivityPolicyOverrides;
  webhook?: WebhookTarget;
  /** Past this, the work is cancelled and the job ends FAILED (CANCELLED when it had not started). */
  deadlineSeconds?: number;
  /** false: the job belongs to no batch, so its end has no batch webhook to start; unset (older runs): looked up. */
  inBatch?: boolean;
}

export type JobPhase = 'starting' | 'generating' | 'persisting' | 'finishing' | 'completed' | 'failed' | 'cancelled';
export type OutputState = 'pending' | 'storing' | 'stored' | 'failed' | 'cancelled';

export interface OutputProgress {
  index: number;
  state: OutputState;
  attempts: number;
  error?: string;
}

export interface JobProgress {
  jobId: string;
  phase: JobPhase;
  predictionId?: string;
  outputs: OutputProgress[];
  cancelReason?: string;
  error?: string;
}

export interface CancelJobSignal {
  reason?: string;
}

/** `temporal workflow query --name progress`: the job's live state. */
export const progressQuery = defineQuery<JobProgress>('progress');

/** `temporal workflow signal --name cancel --input '{"reason":"…"}'`: cancel, recording why. */
export const cancelSignal = defineSignal<[CancelJobSignal?]>('cancel');
