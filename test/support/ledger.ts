import { createHash } from 'node:crypto';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { Pool } from 'pg';
import { postJson } from './stack';

const TERMINAL = ['COMPLETED', 'FAILED', 'CANCELLED'];

/** Every submission a fault test made, and what the API answered: the entries auditLedger checks. */
export class SubmissionLedger {
  readonly accepted: { jobId: string; prompt: string; at: number }[] = [];
  readonly rejected: { prompt: string; status: number; detail?: string }[] = [];
  private count = 0;

  constructor(private readonly marker: string) {}

  /** POST /api/v1/generate with a prompt unique to this submission; records the answer. */
  async submit(
    baseUrl: string,
    request: Record<string, unknown>,
  ): Promise<{ status: number; jobId?: string; body?: Record<string, any>; ms: number }> {
    const prompt = `${this.marker} #${++this.count} ${String(request.prompt ?? '')}`.trim();
    const started = Date.now();
    const reply = await postJson(baseUrl, '/api/v1/generate', { ...request, prompt });
    const ms = Date.now() - started;
    if (reply.status === 202) {
      const jobId = reply.body!.job_id as string;
      this.accepted.push({ jobId, prompt, at: started });
      return { status: reply.status, jobId, body: reply.body, ms };
    }
    this.rejected.push({ prompt, status: reply.status, detail: reply.body?.detail });
    return { status: reply.status, body: reply.body, ms };
  }

  get jobIds(): string[] {
    return this.accepted.map((entry) => entry.jobId);
  }
}

export interface AuditOptions {
  pool: Pool;
  s3: S3Client;
  bucket: string;
  /** Jobs that were accepted: each must have ended, with its rows and objects in agreement. */
  jobIds: string[];
  /** Prompts of rejected submissions: none may have left a row. */
  rejectedPrompts?: string[];
  /** The status every accepted job must have ended in (default COMPLETED). */
  expectedStatus?: string;
}

export interface AuditSummary {
  jobs: number;
  media: number;
  objects: number;
  bytes: number;
  rejected: number;
  /** Multipart uploads left open under these jobs (by killed workers): never visible as objects. */
  openMultipartUploads: number;
}

/**
 * Audits a set of jobs after a fault scenario, from the database and the bucket themselves (not the
 * API), so that what the rows say and what is stored balance:
 * - every accepted job has a row, ended in the expected status, with exactly one media row per
 *   output index;
 * - every object under jobs/{id}/ is the object of a COMPLETED media row, with the recorded size;
 * - every COMPLETED media row's object exists, with the recorded size and SHA-256;
 * - no rejected submission left a row.
 * Throws one error listing everything that does not balance.
 */
export async function auditJobs(options: AuditOptions): Promise<AuditSummary> {
  const { pool, s3, bucket, jobIds, expectedStatus = 'COMPLETED' } = options;
  const problems: string[] = [];
  const summary: AuditSummary = {
    jobs: jobIds.length,
    media: 0,
    objects: 0,
    bytes: 0,
    rejected: options.rejectedPrompts?.length ?? 0,
    openMultipartUploads: 0,
  };

  if (new Set(jobIds).size !== jobIds.length) problems.push('the same job id was accepted twice');

  for (const jobId of jobIds) {
    const { rows: jobRows } = await pool.query<{ status: string; num_outputs: number; error_message: string | null }>(
      'select status, num_outputs, error_message from jobs where id = $1',
      [jobId],
    );
    const job = jobRows[0];
    if (!job) {
      problems.push(`job ${jobId} was accepted but has no row`);
      continue;
    }
    if (!TERMINAL.includes(job.status)) problems.push(`job ${jobId} has not ended: ${job.status}`);
    else if (job.status !== expectedStatus)
      problems.push(`job ${jobId} ended ${job.status}, not ${expectedStatus}: ${job.error_message}`);

    const { rows: mediaRows } = await pool.query<{
      output_index: number;
      status: string;
      s3_key: string;
      size_bytes: string | null;
      sha256: string | null;
    }>('select output_index, status, s3_key, size_bytes, sha256 from media where job_id = $1 order by output_index', [
      jobId,
    ]);
    summary.media += mediaRows.length;
    const indexes = mediaRows.map((row) => row.output_index);
    const expectedIndexes = Array.from({ length: job.num_outputs }, (_, index) => index);
    if (JSON.stringify(indexes) !== JSON.stringify(expectedIndexes)) {
      problems.push(
        `job ${jobId} has media rows for outputs [${indexes.join(', ')}], not [${expectedIndexes.join(', ')}]`,
      );
    }
    if (job.status === 'COMPLETED') {
      for (const row of mediaRows)
        if (row.status !== 'COMPLETED')
          problems.push(`job ${jobId} is COMPLETED but output ${row.output_index} is ${row.status}`);
    }

    const objects = await listObjects(s3, bucket, `jobs/${jobId}/`);
    summary.objects += objects.length;
    for (const object of objects) {
      summary.bytes += object.size;
      const row = mediaRows.find((candidate) => candidate.s3_key === object.key);
      if (!row) problems.push(`object ${object.key} has no media row`);
      else if (row.status !== 'COMPLETED') problems.push(`object ${object.key} exists but its row says ${row.status}`);
      else if (Number(row.size_bytes) !== object.size)
        problems.push(`object ${object.key} is ${object.size} bytes; its row says ${row.size_bytes}`);
    }
    for (const row of mediaRows.filter((candidate) => candidate.status === 'COMPLETED')) {
      const object = objects.find((candidate) => candidate.key === row.s3_key);
      if (!object) {
        problems.push(`output ${row.output_index} of job ${jobId} is COMPLETED but ${row.s3_key} is not in the bucket`);
        continue;
      }
      const sha256 = await objectSha256(s3, bucket, row.s3_key);
      if (sha256 !== row.sha256) problems.push(`${row.s3_key} has SHA-256 ${sha256}; its row says ${row.sha256}`);
    }

    const uploads = await s3
      .send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `jobs/${jobId}/` }))
      .catch(() => undefined);
    summary.openMultipartUploads += uploads?.Uploads?.length ?? 0;
  }

  for (const prompt of options.rejectedPrompts ?? []) {
    const { rows } = await pool.query<{ id: string }>('select id from jobs where prompt = $1', [prompt]);
    if (rows.length > 0)
      problems.push(
        `a rejected submission left job rows: ${rows.map((row) => row.id).join(', ')} (prompt ${JSON.stringify(prompt)})`,
      );
  }

  if (problems.length > 0) throw new Error(`the books do not balance:\n  ${problems.join('\n  ')}`);
  return summary;
}

/** auditJobs for the jobs a ledger recorded: the accepted ones, and the prompts of those refused. */
export function auditLedger(
  ledger: SubmissionLedger,
  options: Omit<AuditOptions, 'jobIds' | 'rejectedPrompts'>,
): Promise<AuditSummary> {
  return auditJobs({
    ...options,
    jobIds: ledger.jobIds,
    rejectedPrompts: ledger.rejected.map((entry) => entry.prompt),
  });
}

/** Every object under `prefix`, with its size. */
export async function listObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<{ key: string; size: number }[]> {
  const objects: { key: string; size: number }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) objects.push({ key: object.Key!, size: object.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

async function objectSha256(s3: S3Client, bucket: string, key: string): Promise<string> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of object.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
  return hash.digest('hex');
}
