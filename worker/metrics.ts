import http from 'node:http';
import type { Context as ActivityContext } from '@temporalio/activity';
import type {
  ActivityExecuteInput,
  ActivityInboundCallsInterceptor,
  ActivityInterceptorsFactory,
  Next,
} from '@temporalio/worker';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export interface WorkerMetrics {
  registry: Registry;
  /** Times every activity attempt and counts its failures. */
  activityInterceptor: ActivityInterceptorsFactory;
}

/** The worker's Prometheus metrics: activity durations and failures, by activity type. */
export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'activity_duration_seconds',
    help: 'Duration of activity attempts, by activity type and outcome (completed, failed, cancelled)',
    labelNames: ['activity_type', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'activity_failures_total',
    help: 'Failed activity attempts, by activity type and error type',
    labelNames: ['activity_type', 'error_type'] as const,
    registers: [registry],
  });

  class MetricsInterceptor implements ActivityInboundCallsInterceptor {
    constructor(private readonly context: ActivityContext) {}

    async execute(
      input: ActivityExecuteInput,
      next: Next<ActivityInboundCallsInterceptor, 'execute'>,
    ): Promise<unknown> {
      const activityType = this.context.info.activityType;
      const end = duration.startTimer({ activity_type: activityType });
      try {
        const result = await next(input);
        end({ outcome: 'completed' });
        return result;
      } catch (error) {
        const cancelled = this.context.cancellationSignal.aborted;
        end({ outcome: cancelled ? 'cancelled' : 'failed' });
        if (!cancelled) failures.inc({ activity_type: activityType, error_type: errorType(error) });
        throw error;
      }
    }
  }

  return { registry, activityInterceptor: (context) => ({ inbound: new MetricsInterceptor(context) }) };
}

function errorType(error: unknown): string {
  const typed = error as { type?: unknown; name?: unknown } | undefined;
  if (typeof typed?.type === 'string' && typed.type) return typed.type;
  return typeof typed?.name === 'string' ? typed.name : 'Error';
}

/** Serves GET /metrics for the worker (WORKER_METRICS_PORT). */
export function serveWorkerMetrics(registry: Registry, port: number, host = '0.0.0.0'): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end('only /metrics here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
