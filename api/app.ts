import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import swaggerUi from 'swagger-ui-express';
import type { ApiDependencies } from './dependencies';
import { buildOpenApiDocument } from './openapi';
import { errorHandler, notFoundHandler } from './problem';
import { generateRouter } from './routes/generate';
import { healthRouter } from './routes/health';
import { jobsRouter } from './routes/jobs';
import { LIMITS } from './schemas';

export function createApp(deps: ApiDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(pinoHttp({ logger: deps.logger, autoLogging: { ignore: (req) => req.url === '/healthz' } }));
  app.use(express.json({ limit: LIMITS.maxBodyBytes, type: 'application/json', strict: false }));

  app.use(healthRouter(deps));
  app.use(generateRouter(deps));
  app.use(jobsRouter(deps));

  const openApiDocument = buildOpenApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openApiDocument, { customSiteTitle: 'Media generation API' }));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
