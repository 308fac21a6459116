import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../common/config';
import type { Database } from '../db/client';

export interface ApiDependencies {
  config: Config;
  db: Database;
  temporal: Client;
  /** For the API's own S3 calls (readiness). */
  s3: S3Client;
  /** For presigned URLs: addressed the way clients reach S3. */
  presignS3: S3Client;
  logger: Logger;
  /** OTEL_EXPORTER_OTLP_ENDPOINT is set: a span per request (the Temporal client carries it into workflows). */
  tracing?: boolean;
}
