import { z } from 'zod';

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off', ''])
  .transform((value) => ['true', '1', 'yes', 'on'].includes(value));

const optionalPositiveInt = z.coerce.number().int().positive().optional();

/**
 * Where FAULT_INJECTION_PAUSE_AT can stop an activity: after the provider created a prediction
 * (before its id is recorded), after an output was uploaded (before its row says so).
 */
export const FAULT_INJECTION_POINTS = ['after-create', 'after-upload'] as const;
export type FaultInjectionPoint = (typeof FAULT_INJECTION_POINTS)[number];

/**
 * Every variable the processes read. Defaults point at the local stack that `npm run dev`
 * starts, so a process started by hand joins it.
 */
export const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/media_generation'),
  DATABASE_POOL_SIZE: z.coerce.number().int().positive().default(20),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('media-generation'),
  /** A managed Temporal (Temporal Cloud): an API key, sent over TLS. */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  /** A managed Temporal with mTLS: the client certificate and its key (PEM files), both or neither. */
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  /** TLS to the frontend; on by default when an API key or a client certificate is set. */
  TEMPORAL_TLS: booleanFlag.optional(),
  /** The Temporal Web UI as the console's users reach it: the console links each job to its workflow there. */
  TEMPORAL_UI_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8233'),
  S3_ENDPOINT_URL: z.url().default('http://127.0.0.1:9000'),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().min(1).default('media-dev-access'),
  S3_SECRET_ACCESS_KEY: z.string().min(1).default('media-dev-secret'),
  S3_BUCKET_NAME: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name')
    .default('media'),
  S3_FORCE_PATH_STYLE: booleanFlag.default(true),
  /** The S3 address clients can reach, for presigned URLs, when it differs from S3_ENDPOINT_URL (containers). */
  S3_PUBLIC_ENDPOINT_URL: z.url().optional(),
  PRESIGNED_URL_EXPIRES_SECONDS: z.coerce.number().int().min(1).max(604800).default(3600),
  MEDIA_GENERATOR_PROVIDER: z.enum(['fake', 'replicate']).default('fake'),
  REPLICATE_API_TOKEN: z.string().min(1).optional(),
  REPLICATE_BASE_URL: z.url().default('https://api.replicate.com/v1'),
  MEDIA_FETCH_ALLOW_PRIVATE: booleanFlag.default(false),
  MEDIA_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(2 * 1024 ** 3),
  /** Sent as Cancel-After with each Replicate create: bounds what a prediction nobody waits for can cost. */
  REPLICATE_PREDICTION_DEADLINE_SECONDS: z.coerce.number().int().min(5).default(1800),
  /** Simulated provider run time for the fake provider, for trying out cancellation and queries. */
  FAKE_PROVIDER_LATENCY_MS: z.coerce.number().int().min(0).default(0),
  /** Activity policy overrides; unset keeps the defaults in workflows/policies.ts. */
  GENERATE_MAX_ATTEMPTS: optionalPositiveInt,
  PERSIST_MAX_ATTEMPTS: optionalPositiveInt,
  /** How long one output may take to store, worker restarts included; unset: 6 hours. */
  PERSIST_BUDGET_SECONDS: optionalPositiveInt,
  /** Outputs that announce at most this many bytes are stored by a local activity first (0: never); unset: 2 MiB. */
  PERSIST_LOCALLY_MAX_BYTES: z.coerce.number().int().min(0).optional(),
  /** How long a job waits for its prediction, worker restarts included; unset: 2 hours. */
  PREDICTION_WAIT_SECONDS: optionalPositiveInt,
  ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: optionalPositiveInt,
  /** A prebuilt workflow bundle for the worker to load instead of bundling the sources at start. */
  WORKFLOW_BUNDLE_PATH: z.string().min(1).optional(),
  /**
   * How often the reconciler looks for jobs whose workflows ended without them (terminated, timed out).
   * 0: this worker does not start the reconciler (another worker on the task queue, or an operator, does).
   */
  RECONCILE_INTERVAL_SECONDS: z.coerce
    .number()
    .int()
    .refine((seconds) => seconds === 0 || seconds >= 5, 'must be 0 (off) or at least 5')
    .default(30),
  /** How long stored outputs are kept once their job ended, and the most a request's retention_seconds may ask; unset keeps them. */
  MEDIA_RETENTION_SECONDS: optionalPositiveInt,
  /** How often the retention Schedule removes expired outputs. */
  MEDIA_RETENTION_SWEEP_SECONDS: z.coerce.number().int().min(1).default(60),
  /**
   * Fault tests only: the worker's activities stop at this line until the worker is killed, so a
   * test can kill it exactly there. Unset (off) everywhere else.
   */
  FAULT_INJECTION_PAUSE_AT: z.enum(FAULT_INJECTION_POINTS).optional(),
  /** off: no keys, every job visible to every client (the earlier service); required: Bearer keys on every /api route. */
  AUTH_MODE: z.enum(['off', 'required']).default('off'),
  /** Standard Webhooks secret: `whsec_` + base64 of the HMAC key. Unset: requests with a webhook_url are refused. */
  WEBHOOK_SIGNING_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be whsec_ followed by base64')
    .refine(
      (value) => Buffer.from(value.slice('whsec_'.length), 'base64').length >= 24,
      'must encode at least 24 bytes of key',
    )
    .optional(),
  /** First retry delay of webhook deliveries (backoff doubles it, up to an hour); unset keeps the policy's 30 s. */
  WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS: optionalPositiveInt,
  /** Requests per minute per API key (per client address when AUTH_MODE=off); unset: no limit. */
  RATE_LIMIT_PER_MINUTE: optionalPositiveInt,
  /** Jobs PENDING or PROCESSING at once per API key (per client address when AUTH_MODE=off); unset: no limit. */
  MAX_RUNNING_JOBS_PER_KEY: optionalPositiveInt,
  /** Redeliveries of a job's webhooks per minute (POST .../redeliver), shared by every API process. */
  WEBHOOK_REDELIVERIES_PER_MINUTE: z.coerce.number().int().positive().default(5),
  /** Event streams (GET /api/v1/jobs/{id}/events) open at once in one API process. */
  SSE_MAX_STREAMS: z.coerce.number().int().positive().default(1000),
  /** Event streams open at once per API key (per client address when AUTH_MODE=off) in one API process. */
  SSE_MAX_STREAMS_PER_KEY: z.coerce.number().int().positive().default(20),
  /** Longest life of one event stream; the client reconnects with Last-Event-ID and resumes. */
  SSE_MAX_STREAM_SECONDS: z.coerce.number().int().positive().default(900),
  /**
   * Database connections the event streams of one API process share (the rest of the pool stays
   * for the other routes); less than DATABASE_POOL_SIZE. Unset: see sseDatabaseConnections().
   */
  SSE_DATABASE_CONNECTIONS: optionalPositiveInt,
  /** OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318); unset: tracing off. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  /**
   * On SIGTERM, how long running activities get to finish before the worker gives them back (a
   * prediction being waited on keeps running upstream and the next worker resumes it).
   */
  WORKER_SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).default(20),
  /** Port of the worker's own Prometheus /metrics (activity durations and failures); 0 turns it off. */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** Worker Deployment Versioning (docs/operating.md, "Deploys"): the deployment this worker's version belongs to. */
  WORKER_DEPLOYMENT_NAME: z
    .string()
    .min(1)
    .max(255)
    .regex(/^(?!__)[^.:]+$/, "must not contain '.' or ':' nor start with '__'")
    .default('media-generation'),
  /**
   * The worker's build id; set, the worker is versioned (a job finishes on the build it started on).
   * `auto`: the SHA-256 of the workflow bundle it loads. Unset: an unversioned worker (npm run dev, tests).
   */
  WORKER_BUILD_ID: z
    .string()
    .min(1)
    .max(255)
    .regex(/^(?!__)/, "must not start with '__'")
    .optional(),
  /** With WORKER_BUILD_ID: the worker makes its version the deployment's current one once it polls (compose, single host). */
  WORKER_PROMOTE_ON_START: booleanFlag.default(false),
});

export type Config = z.infer<typeof configSchema>;

/** The event streams' share of the pool: SSE_DATABASE_CONNECTIONS, or a quarter of DATABASE_POOL_SIZE (1 to 4). */
export function sseDatabaseConnections(
  config: Pick<Config, 'SSE_DATABASE_CONNECTIONS' | 'DATABASE_POOL_SIZE'>,
): number {
  return config.SSE_DATABASE_CONNECTIONS ?? Math.max(1, Math.min(4, Math.floor(config.DATABASE_POOL_SIZE / 4)));
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment once; a bad value throws naming the variable and what is wrong. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  // An empty value means unset, as `${VAR:-}` in compose files and blank lines in .env files produce.
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = configSchema.safeParse(given);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const config = result.data;
  if (config.SSE_DATABASE_CONNECTIONS !== undefined && config.SSE_DATABASE_CONNECTIONS >= config.DATABASE_POOL_SIZE) {
    throw new ConfigError(
      `Invalid configuration:\n  SSE_DATABASE_CONNECTIONS: must be less than DATABASE_POOL_SIZE (${config.DATABASE_POOL_SIZE}), so that event streams leave connections to the other routes`,
    );
  }
  if (Boolean(config.TEMPORAL_TLS_CERT_PATH) !== Boolean(config.TEMPORAL_TLS_KEY_PATH)) {
    throw new ConfigError(
      `Invalid configuration:\n  ${config.TEMPORAL_TLS_CERT_PATH ? 'TEMPORAL_TLS_KEY_PATH' : 'TEMPORAL_TLS_CERT_PATH'}: required with ${config.TEMPORAL_TLS_CERT_PATH ? 'TEMPORAL_TLS_CERT_PATH' : 'TEMPORAL_TLS_KEY_PATH'} (mTLS needs the certificate and its key)`,
    );
  }
  if (config.TEMPORAL_TLS === false && (config.TEMPORAL_API_KEY || config.TEMPORAL_TLS_CERT_PATH)) {
    throw new ConfigError(
      `Invalid configuration:\n  TEMPORAL_TLS: cannot be off with ${config.TEMPORAL_API_KEY ? 'TEMPORAL_API_KEY' : 'TEMPORAL_TLS_CERT_PATH'} set (the credentials would cross the network in the clear)`,
    );
  }
  if (config.MEDIA_GENERATOR_PROVIDER === 'replicate' && !config.REPLICATE_API_TOKEN) {
    throw new ConfigError(
      'Invalid configuration:\n  REPLICATE_API_TOKEN: required when MEDIA_GENERATOR_PROVIDER=replicate',
    );
  }
  if (config.WORKER_PROMOTE_ON_START && !config.WORKER_BUILD_ID) {
    throw new ConfigError(
      'Invalid configuration:\n  WORKER_PROMOTE_ON_START: needs WORKER_BUILD_ID (an unversioned worker has no version to make current)',
    );
  }
  return config;
}

/** For process entry points: a bad value stops the process with a message naming the variable. */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
}
