import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ALL_PHASES, QUICK, runBench, type BenchResult } from '../../bench/phases';
import { renderChart } from '../../bench/chart';
import { formatMarkdownTable, formatSummary } from '../../bench/report';
import { createS3Client } from '../../common/s3';
import { useTestStack } from '../support/use-stack';
import { testServers } from '../support/servers';

/** `npm run bench` in quick mode against the test servers, so the benchmark cannot rot. */
describe('benchmark smoke run', () => {
  const stack = useTestStack();

  it('measures every phase in quick mode and reports sane figures', async () => {
    const { config } = stack;
    const result: BenchResult = await runBench({
      ...QUICK,
      // The headline point (2 outputs, 4 clients) is reused, so two more points are measured.
      scalingOutputs: [1, QUICK.outputs],
      scalingConcurrency: [QUICK.concurrency, 8],
      apiBaseUrls: [stack.baseUrl],
      engine: 'dev-server',
      temporalAddress: testServers().temporalAddress,
      databaseUrl: config.DATABASE_URL,
      namespace: config.TEMPORAL_NAMESPACE,
      s3: {
        endpoint: config.S3_ENDPOINT_URL,
        region: config.S3_REGION,
        accessKeyId: config.S3_ACCESS_KEY_ID,
        secretAccessKey: config.S3_SECRET_ACCESS_KEY,
        forcePathStyle: config.S3_FORCE_PATH_STYLE,
        bucket: config.S3_BUCKET_NAME,
      },
      designs: {
        redisUrl: 'redis://127.0.0.1:6379',
        python: '/usr/bin/python3',
        celeryPoolSizes: [...QUICK.celeryPoolSizes],
      },
      phases: ALL_PHASES,
      quick: true,
      log: () => undefined,
    });

    // The result survives its JSON line.
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(result).toMatchObject({
      version: 1,
      quick: true,
      throughput: expect.any(Object),
      apiLatency: expect.any(Object),
      scaling: expect.any(Object),
      largeOutput: expect.any(Object),
    });

    const { throughput } = result;
    for (const run of [throughput!.service, throughput!.bare]) {
      expect(run.completed).toBeGreaterThan(0);
      expect(run.failed).toBe(0);
      expect(run.unfinished).toBe(0);
      expect(run.jobsPerS).toBeGreaterThan(0);
      expect(run.latency.p50Ms).toBeGreaterThan(0);
      expect(run.latency.p99Ms).toBeGreaterThanOrEqual(run.latency.p50Ms);
    }
    expect(throughput!.ratio).toBeGreaterThan(0);
    // The headline's service run sits between two bare runs, and its ratio is against their mean
    // (rounded to one decimal, as every jobs/s figure is).
    expect(throughput!.bareAfter!.completed).toBeGreaterThan(0);
    const bareMean = (throughput!.bare.jobsPerS + throughput!.bareAfter!.jobsPerS) / 2;
    expect(Math.abs(throughput!.bareJobsPerS! - bareMean)).toBeLessThanOrEqual(0.05 + 1e-9);
    if (process.platform === 'linux') {
      // The load generator runs here, so its share of each run's CPU cannot be zero, and the parts add up.
      for (const perJob of [throughput!.cpuMsPerJob!.service!, throughput!.cpuMsPerJob!.bare!]) {
        expect(perJob.bench).toBeGreaterThan(0);
        const parts = Object.entries(perJob)
          .filter(([group]) => group !== 'total')
          .reduce((sum, [, ms]) => sum + ms, 0);
        expect(Math.abs(parts - perJob.total!)).toBeLessThan(1);
      }
    }

    const api = result.apiLatency!;
    expect(api.accepted).toBeGreaterThan(0);
    expect(api.rejected).toBe(0);
    expect(api.post.p99Ms).toBeGreaterThan(0);
    // Every accepted POST said where its time went, and its parts fit inside what the client saw.
    expect(api.serverTiming.db.count).toBe(api.accepted);
    expect(api.serverTiming.temporal.count).toBe(api.accepted);
    expect(api.serverTiming.db.maxMs + api.serverTiming.temporal.p50Ms).toBeGreaterThan(0);
    expect(api.serverTiming.temporal.p50Ms).toBeLessThanOrEqual(api.post.maxMs);
    expect(api.drain).toMatchObject({ failed: 0, unfinished: 0, completed: api.accepted });

    const points = [...result.scaling!.byOutputs, ...result.scaling!.byConcurrency];
    expect(result.scaling!.byOutputs.map((p) => p.outputs)).toEqual([1, QUICK.outputs]);
    expect(result.scaling!.byConcurrency.map((p) => p.concurrency)).toEqual([QUICK.concurrency, 8]);
    for (const p of points) {
      expect(p.service.completed).toBeGreaterThan(0);
      // The errors are in the comparison so that a failure says what went wrong.
      expect({ failed: p.service.failed, errors: p.service.errors }).toEqual({ failed: 0, errors: [] });
      expect(p.bare.completed).toBeGreaterThan(0);
      expect(p.bare.failed).toBe(0);
      expect(p.ratio).toBeGreaterThan(0);
    }

    const large = result.largeOutput!;
    expect(large.bytes).toBe(QUICK.largeOutputBytes);
    for (const run of [large.store, large.plain]) {
      expect(run.mbPerS).toBeGreaterThan(0);
      expect(run.baselineRssMiB).toBeGreaterThan(0);
      expect(run.peakRssGrowthMiB).toBeGreaterThanOrEqual(0);
      expect(run.peakRssGrowthMiB).toBeLessThan(512);
    }
    expect(large.ratio).toBeGreaterThan(0);
    // The big objects are deleted afterwards.
    const listed = await createS3Client(config).send(
      new ListObjectsV2Command({ Bucket: config.S3_BUCKET_NAME, Prefix: 'bench/' }),
    );
    expect(listed.KeyCount ?? 0).toBe(0);

    // Clients that wait or follow events finish every job, and the idle streams were all open and heard a change.
    expect(result.clients!.map((client) => client.kind)).toEqual(['wait', 'sse']);
    for (const client of result.clients!) expect(client.jobsPerS).toBeGreaterThan(0);
    // The service's commands with nothing in them ran beside the bare shape, every workflow to its end.
    const empty = result.emptyServiceShape!;
    expect(empty.jobsPerS).toBeGreaterThan(0);
    expect([empty.failed, empty.unfinished]).toEqual([0, 0]);
    expect(empty.ratio).toBeGreaterThan(0);
    const idle = result.idleStreams!;
    expect(idle.streamsOpen).toBe(idle.streams);
    expect(idle.changeToEvent.count).toBeGreaterThan(0);
    expect(idle.rssBeforeMiB).toBeGreaterThan(0);
    if (process.platform === 'linux') expect(idle.pendingStatusPoll!.apiCpuMs).toBeGreaterThan(0);

    // The designs it is compared with did the job's work: every completed job's outputs recorded
    // and in S3 (and removed afterwards), beside bare runs.
    expect(result.designsSkipped).toBeUndefined();
    expect(result.designs!.map((design) => [design.design, design.concurrency])).toEqual([
      ['bullmq', QUICK.concurrency],
      ['celery', QUICK.celeryPoolSizes[0]],
    ]);
    for (const design of result.designs!) {
      expect({ failed: design.failed, errors: design.errors }).toEqual({ failed: 0, errors: [] });
      expect(design.completed).toBeGreaterThan(0);
      expect(design.jobsCompleted).toBeGreaterThanOrEqual(design.completed);
      expect(design.outputsStored).toBe(design.jobsCompleted * QUICK.outputs);
      expect(design.objectsStored).toBe(design.outputsStored);
      expect(design.bareJobsPerS).toBeGreaterThan(0);
    }
    const designObjects = await createS3Client(config).send(
      new ListObjectsV2Command({ Bucket: config.S3_BUCKET_NAME, Prefix: 'designs/' }),
    );
    expect(designObjects.KeyCount ?? 0).toBe(0);

    expect(result.checks.map((check) => check.name)).toHaveLength(8);
    expect(renderChart(result)).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
    expect(formatSummary(result)).toContain('Throughput, closed loop');
    expect(formatMarkdownTable(result)).toContain('| Figure |');
    expect(formatSummary(result)).toContain('Celery chain and chord, pool of 2');
  }, 240_000);
});
