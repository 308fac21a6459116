/** One Server-Sent Event, as the stream's lines define it (WHATWG HTML, "Server-sent events"). */
export interface ServerSentEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Turns the text of an event stream, in chunks cut anywhere, into its events. EventSource cannot
 * send an Authorization header, so the page reads the stream with fetch() and parses it here.
 */
export class EventStreamParser {
  private buffer = '';
  private data: string[] = [];
  private eventType = '';
  private eventId: string | undefined;
  /** The last `retry:` the server asked for, in milliseconds. */
  retryMs: number | undefined;
  /** The id of the last event dispatched: what Last-Event-ID sends on a reconnect. */
  lastEventId: string | undefined;

  push(chunk: string): ServerSentEvent[] {
    this.buffer += chunk;
    const events: ServerSentEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone \r at the end may be the first half of \r\n: wait for the next chunk.
      if (!match || (match[0] === '\r' && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  private line(line: string): ServerSentEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.eventType = value;
    else if (field === 'id' && !value.includes('\u0000')) this.eventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }

  private dispatch(): ServerSentEvent | undefined {
    // As EventSource does: an id holds for the events after it until another id replaces it.
    this.lastEventId = this.eventId;
    const event =
      this.data.length > 0
        ? { id: this.eventId, event: this.eventType || 'message', data: this.data.join('\n') }
        : undefined;
    this.data = [];
    this.eventType = '';
    return event;
  }
}
