import { Client, Connection } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { loadConfigOrExit } from '../common/config';
import { createLogger } from '../common/logger';
import { createS3Client } from '../common/s3';
import { createPresigner } from '../common/presigner';
import { startTracing } from '../common/tracing';
import { temporalConnectionSettings } from '../common/temporal-connection';
import { createDatabase } from '../db/client';
import { JobChanges } from '../db/job-changes';
import { createApp } from './app';
import { answerUnparsableRequestsWithProblems } from './client-errors';
import { drainServer } from './shutdown';

function main(): void {
  const config = loadConfigOrExit();
  const logger = createLogger('api', config.LOG_LEVEL);
  const tracing = startTracing('media-generation-api', { endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT });
  if (tracing) logger.info({ endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing on');
  const database = createDatabase({
    url: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    onIdleClientError: (error) => logger.warn({ err: error }, 'idle database connection lost'),
  });
  // Lazy: the API starts, and answers /healthz and 503s, while Temporal is still coming up.
  const connection = Connection.lazy({ ...temporalConnectionSettings(config), connectTimeout: '3s' });
  const temporal = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    ...(tracing ? { interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } } : {}),
  });
  const s3 = createS3Client(config);
  const changes = new JobChanges({
    url: config.DATABASE_URL,
    onError: (error) => logger.warn({ err: error }, 'the change feed lost its connection; reconnecting'),
  });
  // Postgres may still be coming up: the feed keeps trying, and the API serves meanwhile.
  void changes.start().catch(() => undefined);
  const stopping = new AbortController();
  const app = createApp({
    changes,
    stopping: stopping.signal,
    config,
    db: database.db,
    temporal,
    s3,
    presigner: createPresigner(config, s3),
    logger,
    tracing: Boolean(tracing),
  });

  const server = app.listen(config.PORT, () =>
    logger.info({ port: config.PORT }, `API listening on http://127.0.0.1:${config.PORT}`),
  );
  answerUnparsableRequestsWithProblems(server);
  // Idle keep-alive connections stay open longer than a load balancer's (60 s on the common ones):
  // with Node's 5 s default, a client or proxy that reuses a connection the API just closed gets a reset.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    void drainServer(server, stopping).then(() =>
      Promise.allSettled([changes.stop(), database.close(), connection.close(), tracing?.shutdown()]).then(() =>
        process.exit(0),
      ),
    );
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

main();
