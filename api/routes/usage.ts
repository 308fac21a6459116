import { Router } from 'express';
import { z } from 'zod';
import { usageByDayAndModel, type UsageFigures, type UsageRow } from '../../db/queries/usage';
import { callerOf } from '../auth';
import type { ApiDependencies } from '../dependencies';
import { common, json, problem, security, unavailable, type OpenApiRegistry } from '../openapi-parts';
import { parseOrThrow } from '../validation';

const DAY_MS = 24 * 3600 * 1000;

/** A date (YYYY-MM-DD, UTC midnight) or a date-time, in the years Postgres counts (1 to 9999, UTC). */
const instant = z
  .union([z.iso.date(), z.iso.datetime({ offset: true })])
  .transform((value) => new Date(value))
  .refine(
    (date) => date.getUTCFullYear() >= 1 && date.getUTCFullYear() <= 9999,
    'must fall in the years 1 to 9999 (UTC)',
  );

export const usageQuerySchema = z
  .strictObject({
    from: instant
      .optional()
      .openapi({ description: 'Jobs submitted at or after this date or date-time; default 30 days before `to`.' }),
    to: instant.optional().openapi({ description: 'Jobs submitted before this date or date-time; default now.' }),
  })
  .refine((range) => !range.from || range.from < (range.to ?? new Date()), {
    message: 'must be before `to` (default now)',
    path: ['from'],
  });

const figuresSchema = z.object({
  jobs: z.number().int(),
  outputs: z.number().int().openapi({ description: 'Outputs stored' }),
  bytes_stored: z.number().int(),
  prediction_seconds: z.number().openapi({ description: "Seconds from each job's start to its prediction succeeding" }),
});

export const usageReplySchema = z
  .object({
    from: z.string(),
    to: z.string(),
    totals: figuresSchema,
    by_day: z.array(figuresSchema.extend({ day: z.string().openapi({ description: 'UTC, YYYY-MM-DD' }) })),
    by_model: z.array(figuresSchema.extend({ model: z.string() })),
  })
  .openapi('Usage');

function figures(rows: UsageFigures[]) {
  return {
    jobs: rows.reduce((sum, row) => sum + row.jobs, 0),
    outputs: rows.reduce((sum, row) => sum + row.outputs, 0),
    bytes_stored: rows.reduce((sum, row) => sum + row.bytesStored, 0),
    prediction_seconds: Math.round(rows.reduce((sum, row) => sum + row.predictionSeconds, 0) * 1000) / 1000,
  };
}

function groupBy(rows: UsageRow[], key: (row: UsageRow) => string): Map<string, UsageRow[]> {
  const groups = new Map<string, UsageRow[]>();
  for (const row of rows) groups.set(key(row), [...(groups.get(key(row)) ?? []), row]);
  return groups;
}

export function usageRouter({ db }: ApiDependencies): Router {
  const router = Router();
  router.get('/api/v1/usage', async (req, res) => {
    const query = parseOrThrow(usageQuerySchema, req.query, 'query');
    const to = query.to ?? new Date();
    const from = query.from ?? new Date(to.getTime() - 30 * DAY_MS);
    const caller = callerOf(res);
    const rows = await usageByDayAndModel(db, { owner: caller.authenticated ? caller.owner : undefined, from, to });
    res.json({
      from: from.toISOString(),
      to: to.toISOString(),
      totals: figures(rows),
      by_day: [...groupBy(rows, (row) => row.day)].map(([day, group]) => ({ day, ...figures(group) })),
      by_model: [...groupBy(rows, (row) => row.model)]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([model, group]) => ({ model, ...figures(group) })),
    });
  });
  return router;
}

/** This router's paths in the OpenAPI document (/openapi.json, /docs). */
export function registerUsagePaths(registry: OpenApiRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/api/v1/usage',
    summary: "The caller's usage by day and by model",
    description:
      "Jobs submitted in [from, to), the outputs they stored, the bytes stored and the seconds spent generating, per UTC day and per model, with totals. Only the caller's own jobs when AUTH_MODE=required; `/metrics` carries the same figures for the whole deployment.",
    security,
    request: { query: usageQuerySchema },
    responses: {
      200: json('Usage', usageReplySchema),
      ...common,
      422: problem('Bad from or to'),
      503: unavailable('A dependency is down'),
    },
  });
}
