import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../common/config';
import type { Presigner } from '../common/presigner';
import type { Database } from '../db/client';
import type { JobChanges } from '../db/job-changes';

export interface ApiDependencies {
  config: Config;
  db: Database;
  temporal: Client;
  /** For the API's own S3 calls (readiness). */
  s3: S3Client;
  /** Signs the URLs of stored outputs, addressed the way clients reach S3 (one cache for the whole API). */
  presigner: Presigner;
  logger: Logger;
  /** This process's change feed (LISTEN job_events): what event streams and `Prefer: wait` wait on. */
  changes: JobChanges;
  /** OTEL_EXPORTER_OTLP_ENDPOINT is set: a span per request (the Temporal client carries it into workflows). */
  tracing?: boolean;
  /**
   * Fires when the process begins to shut down (a deploy): a `Prefer: wait` answers at once with the
   * job's current state, and an event stream ends, so that the client reconnects to another process.
   */
  stopping?: AbortSignal;
}
