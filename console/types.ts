import type { JobStatus, MediaStatus, OutputFormat } from '../common/statuses';

/** What GET /console/config.json answers: what the page needs before it calls the API. */
export interface ConsoleConfig {
  auth_mode: 'off' | 'required';
  /** The job's workflow in the Temporal Web UI, with `{job_id}` to fill in. */
  temporal_ui_job_url: string;
  output_formats: OutputFormat[];
  /** The values of the request's `priority` field, or null where the API has none. */
  priorities: string[] | null;
  limits: {
    max_outputs: number;
    max_prompt_length: number;
    max_model_length: number;
    max_seed: number;
    max_deadline_seconds: number;
  };
}

export interface MediaReply {
  index: number;
  status: MediaStatus;
  media_url: string | null;
  s3_key: string;
  presigned_media_url: string | null;
  content_type: string | null;
  size_bytes: number | null;
  sha256: string | null;
  error_message: string | null;
}

/** GET /api/v1/status/{id}; fields a later API adds (metrics, queue_position, ...) are shown when present. */
export interface StatusReply {
  job_id: string;
  status: JobStatus;
  model: string;
  prompt: string;
  num_outputs: number;
  seed: number;
  output_format: OutputFormat;
  media: MediaReply[];
  error_message: string | null;
  retry_count: number;
  created_at: string | null;
  updated_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  metrics?: Record<string, number | null>;
  [extra: string]: unknown;
}

export interface JobList {
  jobs: StatusReply[];
  next_cursor: string | null;
}

export interface GenerateReply {
  job_id: string;
  status: JobStatus;
  message: string;
}

export interface WebhookDelivery {
  delivery_id: string;
  message_id: string;
  event: string;
  output_index: number | null;
  attempt: number;
  url: string;
  status_code: number | null;
  response_snippet: string | null;
  error: string | null;
  succeeded: boolean;
  created_at: string;
  finished_at: string | null;
}

/** `status` events of GET /api/v1/jobs/{id}/events. */
export interface StatusEvent {
  job_id: string;
  status: JobStatus;
  error_message: string | null;
  at: string;
}

/** `output` events: one output's change, with its presigned URL once stored. */
export interface OutputEvent {
  job_id: string;
  index: number;
  status: MediaStatus;
  s3_key: string;
  error_message: string | null;
  presigned_media_url?: string;
  at: string;
}
