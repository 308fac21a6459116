import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { sql } from 'drizzle-orm';
import { Router } from 'express';
import type { ApiDependencies } from '../dependencies';
import { withTemporalTimeout, withTimeout } from '../../common/timeout';
import { z } from 'zod';
import { json, problem, type OpenApiRegistry } from '../openapi-parts';
import { readinessSchema } from '../schemas';

const CHECK_TIMEOUT_MS = 2_000;

export function healthRouter({ config, db, temporal, s3 }: ApiDependencies): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const checks = {
      postgres: () => withTimeout(() => db.execute(sql`select 1`), CHECK_TIMEOUT_MS, 'Postgres'),
      temporal: () =>
        withTemporalTimeout(
          temporal.connection,
          () => temporal.connection.workflowService.getSystemInfo({}),
          CHECK_TIMEOUT_MS,
        ),
      s3: () =>
        withTimeout(() => s3.send(new HeadBucketCommand({ Bucket: config.S3_BUCKET_NAME })), CHECK_TIMEOUT_MS, 'S3'),
    };
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await check();
          return [name, 'ok'] as const;
        } catch (error) {
          return [name, `unavailable: ${(error as Error).message || (error as Error).name}`] as const;
        }
      }),
    );
    const down = results.filter(([, result]) => result !== 'ok').map(([name]) => name);
    if (down.length === 0) {
      res.json({ status: 'ready', checks: Object.fromEntries(results) });
      return;
    }
    res
      .status(503)
      .type('application/problem+json')
      .send(
        JSON.stringify({
          type: 'about:blank',
          title: 'Not ready',
          status: 503,
          detail: `Unreachable: ${down.join(', ')}.`,
          checks: Object.fromEntries(results),
        }),
      );
  });

  return router;
}

/** This router's paths in the OpenAPI document (/openapi.json, /docs). */
export function registerHealthPaths(registry: OpenApiRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/healthz',
    summary: 'The process is up',
    responses: { 200: json('Up', z.object({ status: z.literal('ok') })) },
  });
  registry.registerPath({
    method: 'get',
    path: '/readyz',
    summary: 'Postgres, Temporal and S3 are reachable',
    responses: { 200: json('Ready', readinessSchema), 503: problem('Names what is unreachable') },
  });
}
