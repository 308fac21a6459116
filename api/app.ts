import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import swaggerUi from 'swagger-ui-express';
import { authenticate } from './auth';
import type { ApiDependencies } from './dependencies';
import { createApiMetrics } from './metrics';
import { buildOpenApiDocument } from './openapi';
import { errorHandler, notFoundHandler } from './problem';
import { rateLimit } from './rate-limit';
import { traceRequests } from './tracing';
import { batchesRouter } from './routes/batches';
import { consoleRouter } from './routes/console';
import { eventsRouter } from './routes/events';
import { generateRouter } from './routes/generate';
import { healthRouter } from './routes/health';
import { jobLifecycleRouter } from './routes/job-lifecycle';
import { jobsRouter } from './routes/jobs';
import { usageRouter } from './routes/usage';
import { LIMITS } from './schemas';

export function createApp(deps: ApiDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const metrics = createApiMetrics(deps.db);
  if (deps.tracing) app.use(traceRequests());
  app.use(metrics.middleware);
  app.use(
    pinoHttp({
      logger: deps.logger,
      autoLogging: { ignore: (req) => req.url === '/healthz' },
      // Clients poll status many times a second: successful reads are debug, changes and errors are logged.
      customLogLevel: (req, res, error) =>
        error || res.statusCode >= 500
          ? 'error'
          : res.statusCode >= 400
            ? 'warn'
            : req.method === 'GET'
              ? 'debug'
              : 'info',
    }),
  );
  // A batch carries up to 100 requests: its own, larger limit (the parser below then finds the body read).
  app.use(
    '/api/v1/batches',
    express.json({ limit: LIMITS.maxBatchBodyBytes, type: 'application/json', strict: false }),
  );
  app.use(express.json({ limit: LIMITS.maxBodyBytes, type: 'application/json', strict: false }));

  app.use(healthRouter(deps));
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  // Every /api route: the caller (an API key when AUTH_MODE=required), then its rate limit.
  app.use('/api', authenticate(deps), rateLimit(deps));
  app.use(generateRouter(deps));
  app.use(eventsRouter(deps));
  app.use(jobsRouter(deps));
  app.use(jobLifecycleRouter(deps));
  app.use(batchesRouter(deps));
  app.use(usageRouter(deps));

  const openApiDocument = buildOpenApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openApiDocument, { customSiteTitle: 'Media generation API' }));
  // The web console: a page for the people who submit jobs, calling the API above like any client.
  app.use(consoleRouter(deps));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
