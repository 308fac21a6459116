import { generateApiKey } from '../../common/api-keys';
import type { Database } from '../../db/client';
import { insertApiKey } from '../../db/queries/api-keys';

/** A new API key, stored the way `npm run apikey -- create` stores it. */
export async function createTestKey(
  db: Database,
  name = 'test',
): Promise<{ id: string; key: string; auth: Record<string, string> }> {
  const key = generateApiKey();
  await insertApiKey(db, { id: key.id, name, keyHash: key.keyHash });
  return { id: key.id, key: key.key, auth: { authorization: `Bearer ${key.key}` } };
}

export interface ServerSentEvent {
  id?: string;
  event?: string;
  data: string;
}

/**
 * Reads a Server-Sent Events stream until it ends, `stopAfter` events arrived, or the timeout.
 * Returns the events and the response status.
 */
export async function readEvents(
  url: string,
  options: { headers?: Record<string, string>; stopAfter?: number; timeoutMs?: number } = {},
): Promise<{ status: number; contentType: string | null; events: ServerSentEvent[]; ended: boolean }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 30_000);
  const events: ServerSentEvent[] = [];
  let ended = false;
  try {
    const response = await fetch(url, {
      headers: { accept: 'text/event-stream', ...options.headers },
      signal: controller.signal,
    });
    if (!response.body)
      return { status: response.status, contentType: response.headers.get('content-type'), events, ended: true };
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = response.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      let boundary: number;
      while ((boundary = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const event: ServerSentEvent = { data: '' };
        let hasData = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const [field, ...rest] = line.split(':');
          const value = rest.join(':').replace(/^ /, '');
          if (field === 'id') event.id = value;
          else if (field === 'event') event.event = value;
          else if (field === 'data') {
            event.data += (hasData ? '\n' : '') + value;
            hasData = true;
          }
        }
        if (hasData) events.push(event);
      }
      if (options.stopAfter !== undefined && events.length >= options.stopAfter) {
        controller.abort();
        break;
      }
    }
    return { status: response.status, contentType: response.headers.get('content-type'), events, ended };
  } catch (error) {
    if ((error as Error).name === 'AbortError')
      return { status: 200, contentType: 'text/event-stream', events, ended: false };
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
