import { ApiClient } from '../../console/api';
import { LiveJobs } from '../../console/live';
import type { StatusEvent } from '../../console/types';

const jobId = '00000000-0000-4000-8000-000000000001';
const statusEvent = (id: number, status: string) =>
  `id: ${id}\nevent: status\ndata: ${JSON.stringify({ job_id: jobId, status, error_message: null, at: '2026-12-04T00:00:00.000Z' })}\n\n`;
const stream = (text: string) => new Response(text, { status: 200, headers: { 'content-type': 'text/event-stream' } });

/** The console's live follower (console/live.ts), over a scripted event stream. */
describe('following a job in the console', () => {
  it("keeps following a retried job whose history holds the first run's end, across a dropped stream", async () => {
    const requests: (string | null)[] = [];
    // The first stream holds the whole history, the retry still running, then ends (its lifetime
    // reached); the reconnect, after its last event id, brings the retry's end.
    const answers = [
      stream(
        `retry: 10\n\n${statusEvent(1, 'PENDING')}${statusEvent(2, 'PROCESSING')}${statusEvent(3, 'FAILED')}${statusEvent(4, 'PROCESSING')}`,
      ),
      stream(statusEvent(5, 'COMPLETED')),
    ];
    const api = new ApiClient({
      key: () => null,
      fetch: async (_input, init) => {
        requests.push(new Headers(init?.headers).get('last-event-id'));
        const answer = answers.shift();
        return answer ?? new Response(null, { status: 204 });
      },
    });
    const statuses: string[] = [];
    const done = new Promise<string>((resolve) => {
      new LiveJobs(api).watch(jobId, {
        status: (event: StatusEvent) => statuses.push(event.status),
        done: (reason) => resolve(reason),
      });
    });
    expect(await done).toBe('ended');
    expect(statuses).toEqual(['PENDING', 'PROCESSING', 'FAILED', 'PROCESSING', 'COMPLETED']);
    expect(requests).toEqual([null, '4']);
  });
});
