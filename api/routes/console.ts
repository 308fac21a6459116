import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { presignedUrl } from '../../common/presigner';
import { OUTPUT_FORMATS } from '../../common/statuses';
import { workflowIdForJob } from '../../common/temporal';
import type { ApiDependencies } from '../dependencies';
import { Problem } from '../problem';
import { generateRequestSchema, LIMITS } from '../schemas';

/** Where `npm run build:console` (scripts/build-console.ts) writes the page. */
export const CONSOLE_BUILD_DIR = path.join(__dirname, '..', '..', 'dist', 'console');

/** The values of an enum field of the generate request, or null when the API has no such field. */
function enumValues(field: string): string[] | null {
  let schema = (generateRequestSchema.shape as Record<string, z.ZodType | undefined>)[field];
  while (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault) schema = schema.unwrap() as z.ZodType;
  return schema instanceof z.ZodEnum ? (schema.options as string[]) : null;
}

/**
 * The web console: GET /console (and / redirecting to it) serves the page that scripts/build-console.ts
 * bundled from console/, /console/jobs/{id} the same page on one job, /console/config.json what the
 * page needs before it calls the API. The page calls the public API like any client, with the
 * caller's key when AUTH_MODE=required.
 */
export function consoleRouter({ config, presigner }: ApiDependencies, buildDir = CONSOLE_BUILD_DIR): Router {
  const router = Router();
  const indexFile = path.join(buildDir, 'index.html');

  // Presigned URLs name S3 as clients reach it (path or virtual-host style): one URL signed here,
  // locally, tells the origin the page's images come from.
  let imageOrigin: Promise<string> | undefined;
  const contentSecurityPolicy = async () => {
    if (!imageOrigin) {
      imageOrigin = presignedUrl(presigner, 'console/origin-probe').then((url) => new URL(url).origin);
      // A signing that failed (credentials not there yet) is tried again by the next page load.
      imageOrigin.catch(() => (imageOrigin = undefined));
    }
    return [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      `img-src 'self' ${await imageOrigin}`,
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join('; ');
  };
  const pageConfig = {
    auth_mode: config.AUTH_MODE,
    temporal_ui_job_url: `${config.TEMPORAL_UI_URL.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(
      config.TEMPORAL_NAMESPACE,
    )}/workflows/${workflowIdForJob('{job_id}')}`,
    output_formats: enumValues('output_format') ?? [...OUTPUT_FORMATS],
    priorities: enumValues('priority'),
    limits: {
      max_outputs: LIMITS.maxOutputs,
      max_prompt_length: LIMITS.maxPromptLength,
      max_model_length: LIMITS.maxModelLength,
      max_seed: LIMITS.maxSeed,
      max_deadline_seconds: LIMITS.maxDeadlineSeconds,
    },
  };
  const common = (res: Response) => res.set({ 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });

  router.get('/', (_req, res) => {
    res.redirect(302, '/console');
  });

  router.get('/console/config.json', (_req, res) => {
    common(res).set('Cache-Control', 'no-cache').json(pageConfig);
  });

  // Hashed names (main-<hash>.js): a new build has new names, so a browser keeps these for a year.
  router.use(
    '/console/assets',
    express.static(path.join(buildDir, 'assets'), {
      immutable: true,
      maxAge: '365d',
      index: false,
      redirect: false,
      setHeaders: (res) => res.setHeader('X-Content-Type-Options', 'nosniff'),
    }),
  );

  router.get('/console/favicon.svg', (_req, res, next) => {
    common(res).sendFile(path.join(buildDir, 'favicon.svg'), { maxAge: '1d' }, (error) => error && next(error));
  });

  const page: RequestHandler = async (_req, res, next) => {
    if (!existsSync(indexFile)) {
      throw new Problem(
        503,
        'Console not built',
        'The console has not been built in this installation: run `npm run build:console`, then reload.',
      );
    }
    common(res).set({
      // Always revalidated (the ETag makes that cheap): it names the current build's files.
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': await contentSecurityPolicy(),
      'X-Frame-Options': 'DENY',
      'Cross-Origin-Opener-Policy': 'same-origin',
    });
    res.sendFile(indexFile, { cacheControl: false }, (error) => error && next(error));
  };
  // Two routes, one page: the page reads its address and shows the gallery or the job.
  router.get('/console', page);
  router.get('/console/jobs/:job_id', page);

  return router;
}
