import { OpenApiGeneratorV31, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { registerMetricsPaths } from './metrics';
import { rateLimitHeaders } from './openapi-parts';
import { registerBatchesPaths } from './routes/batches';
import { registerEventsPaths } from './routes/events';
import { registerGeneratePaths } from './routes/generate';
import { registerHealthPaths } from './routes/health';
import { registerJobLifecyclePaths } from './routes/job-lifecycle';
import { registerJobsPaths } from './routes/jobs';
import { registerUsagePaths } from './routes/usage';

/** The OpenAPI 3.1 document: each router registers its own paths beside its handlers. */
export function buildOpenApiDocument() {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API key from `npm run apikey -- create --name NAME`; required on every /api route when AUTH_MODE=required.',
  });

  for (const register of [
    registerGeneratePaths,
    registerJobsPaths,
    registerJobLifecyclePaths,
    registerBatchesPaths,
    registerUsagePaths,
    registerEventsPaths,
    registerMetricsPaths,
    registerHealthPaths,
  ]) {
    register(registry);
  }

  const document = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Media generation API',
      version: '1.0.0',
      description:
        'Durable media generation: each job is a Temporal workflow; media is stored in S3 and served through presigned URLs.',
    },
  });
  // The rate limiter answers every /api request with its RateLimit headers (while RATE_LIMIT_PER_MINUTE is set).
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    if (!path.startsWith('/api/')) continue;
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      for (const response of Object.values(item[method]?.responses ?? {})) {
        if ('$ref' in response) continue;
        response.headers = { ...rateLimitHeaders, ...response.headers };
      }
    }
  }
  return document;
}
