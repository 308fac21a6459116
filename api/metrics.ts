import type { Request, RequestHandler } from 'express';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { JOB_STATUSES } from '../common/statuses';
import type { Database } from '../db/client';
import { countJobsByStatus } from '../db/queries/jobs';
import { usageByDayAndModel } from '../db/queries/usage';
import { z } from 'zod';
import type { OpenApiRegistry } from './openapi-parts';

export interface ApiMetrics {
  registry: Registry;
  /** Times every request, labelled by method, route template and status code. */
  middleware: RequestHandler;
}

export function routeLabel(req: Request): string {
  const route = req.route as { path?: string } | undefined;
  if (route?.path) return `${req.baseUrl}${route.path}`;
  return req.baseUrl || 'unmatched';
}

/** The API's Prometheus metrics, in a registry of its own (GET /metrics). */
export function createApiMetrics(db: Database): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Gauge({
    name: 'media_jobs',
    help: 'Jobs by status, counted in Postgres at scrape time',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const counts = new Map((await countJobsByStatus(db)).map((row) => [row.status, row.jobs]));
      for (const status of JOB_STATUSES) this.set({ status }, counts.get(status) ?? 0);
    },
  });
  // The figures of GET /api/v1/usage for every key and all time, per model: one query per scrape.
  const usageFigures = [
    ['media_usage_jobs', 'Jobs submitted, by model', 'jobs'],
    ['media_usage_outputs', 'Outputs stored, by model', 'outputs'],
    ['media_usage_bytes_stored', 'Bytes of outputs stored, by model', 'bytesStored'],
    ['media_usage_prediction_seconds', 'Seconds from job start to prediction success, by model', 'predictionSeconds'],
  ] as const;
  let usageScrape: Promise<Awaited<ReturnType<typeof usageByDayAndModel>>> | undefined;
  const usageRows = () => {
    usageScrape ??= usageByDayAndModel(db, {}).finally(() => {
      usageScrape = undefined;
    });
    return usageScrape;
  };
  for (const [name, help, field] of usageFigures) {
    new Gauge({
      name,
      help,
      labelNames: ['model'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const totals = new Map<string, number>();
        for (const row of await usageRows()) totals.set(row.model, (totals.get(row.model) ?? 0) + row[field]);
        for (const [model, value] of totals) this.set({ model }, value);
      },
    });
  }
  const middleware: RequestHandler = (req, res, next) => {
    const end = duration.startTimer();
    res.once('finish', () => end({ method: req.method, route: routeLabel(req), status_code: String(res.statusCode) }));
    next();
  };
  return { registry, middleware };
}

/** This router's paths in the OpenAPI document (/openapi.json, /docs). */
export function registerMetricsPaths(registry: OpenApiRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics of this API process',
    description:
      "`http_request_duration_seconds` (histogram by method, route and status code), `media_jobs` (jobs by status, counted at scrape time), `media_usage_jobs`, `media_usage_outputs`, `media_usage_bytes_stored` and `media_usage_prediction_seconds` (the figures of /api/v1/usage for every key, by model) and the Node.js process metrics. Activity durations and failures are on the worker's own /metrics (WORKER_METRICS_PORT). No key needed.",
    responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } },
  });
}
