import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { sql } from 'drizzle-orm';
import { Router } from 'express';
import type { ApiDependencies } from '../dependencies';

const CHECK_TIMEOUT_MS = 2_000;

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS).unref()),
  ]);
}

export function healthRouter({ config, db, temporal, s3 }: ApiDependencies): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const checks = {
      postgres: () => withTimeout(db.execute(sql`select 1`), 'Postgres'),
      temporal: () =>
        temporal.connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () => temporal.connection.workflowService.getSystemInfo({})),
      s3: () =>
        s3.send(new HeadBucketCommand({ Bucket: config.S3_BUCKET_NAME }), { abortSignal: AbortSignal.timeout(CHECK_TIMEOUT_MS) }),
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
