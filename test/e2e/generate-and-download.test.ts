import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { getJson, postJson, validRequest, waitForJob } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { sleep } from '../support/wait';

describe('end to end: HTTP request to downloadable media', () => {
  const stack = useTestStack();

  it.each(['png', 'jpg', 'webp'] as const)(
    'stores %s outputs that download through their presigned URLs',
    async (format) => {
      const submitted = await postJson(stack.baseUrl, '/api/v1/generate', {
        ...validRequest,
        num_outputs: 3,
        output_format: format,
      });
      expect(submitted.status).toBe(202);
      expect(submitted.body).toMatchObject({ status: 'PENDING', job_id: expect.any(String) });

      const job = await waitForJob(stack.baseUrl, submitted.body!.job_id);
      expect(job.status).toBe('COMPLETED');
      expect(job.started_at).not.toBeNull();
      expect(job.completed_at).not.toBeNull();
      expect(job.media).toHaveLength(3);

      const digests = new Set<string>();
      for (const media of job.media) {
        expect(media.status).toBe('COMPLETED');
        const download = await fetch(media.presigned_media_url);
        expect(download.status).toBe(200);
        const bytes = Buffer.from(await download.arrayBuffer());
        const metadata = await sharp(bytes).metadata();
        expect(metadata.format).toBe(format === 'jpg' ? 'jpeg' : format);
        expect(metadata.width).toBe(256);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(media.sha256);
        expect(bytes.length).toBe(media.size_bytes);
        digests.add(media.sha256);
      }
      expect(digests.size).toBe(3);
    },
  );

  it('answers a later poll with the URL it signed before (reused for half its lifetime)', async () => {
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 1 });
    const first = await waitForJob(stack.baseUrl, submitted.body!.job_id);
    // A URL signed now would carry another X-Amz-Date: signing happens at one-second resolution.
    await sleep(1_100);
    const later = await getJson(stack.baseUrl, `/api/v1/status/${submitted.body!.job_id}`);
    expect(first.media[0].presigned_media_url).toMatch(/X-Amz-Date=/);
    expect(later.body!.media[0].presigned_media_url).toBe(first.media[0].presigned_media_url);
  });

  it('gives the same bytes for the same prompt, seed and index across jobs', async () => {
    const first = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 1 });
    const second = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 1 });
    const [a, b] = await Promise.all([
      waitForJob(stack.baseUrl, first.body!.job_id),
      waitForJob(stack.baseUrl, second.body!.job_id),
    ]);
    expect(a.media[0].sha256).toBe(b.media[0].sha256);
    expect(a.media[0].s3_key).not.toBe(b.media[0].s3_key);
  });

  it('lists the jobs it ran, newest first', async () => {
    const first = await postJson(stack.baseUrl, '/api/v1/generate', validRequest);
    const second = await postJson(stack.baseUrl, '/api/v1/generate', validRequest);
    await waitForJob(stack.baseUrl, first.body!.job_id);
    await waitForJob(stack.baseUrl, second.body!.job_id);
    // Other files' jobs share the database (AUTH_MODE=off lists them all): only the order of these two is this test's.
    const { body } = await getJson(stack.baseUrl, '/api/v1/jobs?status=COMPLETED&limit=100');
    const listed = (body!.jobs as { job_id: string }[]).map((job) => job.job_id);
    expect(listed).toEqual(expect.arrayContaining([first.body!.job_id, second.body!.job_id]));
    expect(listed.indexOf(second.body!.job_id)).toBeLessThan(listed.indexOf(first.body!.job_id));
  });
});
