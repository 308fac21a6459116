import { EventStreamParser } from '../../console/sse';

const STREAM =
  'retry: 1000\n\n' +
  'id: 1\nevent: status\ndata: {"status":"PENDING"}\n\n' +
  ': keepalive\n\n' +
  'id: 2\nevent: output\ndata: {"index":0}\n\n';

describe('EventStreamParser (the console reads event streams with fetch)', () => {
  it('reads events, their ids and the retry delay, and skips comments', () => {
    const parser = new EventStreamParser();
    expect(parser.push(STREAM)).toEqual([
      { id: '1', event: 'status', data: '{"status":"PENDING"}' },
      { id: '2', event: 'output', data: '{"index":0}' },
    ]);
    expect(parser.retryMs).toBe(1000);
    expect(parser.lastEventId).toBe('2');
  });

  it('gives the same events however the stream is cut into chunks', () => {
    const whole = new EventStreamParser().push(STREAM);
    for (let size = 1; size <= 7; size++) {
      const parser = new EventStreamParser();
      const events = [];
      for (let at = 0; at < STREAM.length; at += size) events.push(...parser.push(STREAM.slice(at, at + size)));
      expect(events).toEqual(whole);
    }
  });

  it('accepts CRLF and CR line ends, a CRLF split between chunks included', () => {
    const parser = new EventStreamParser();
    expect(parser.push('id: 7\r\nevent: status\r\ndata: a\r')).toEqual([]);
    expect(parser.push('\n\r\ndata: b\r\r')).toEqual([{ id: '7', event: 'status', data: 'a' }]);
    // The last \r may yet be followed by \n: the line ends are known once the next chunk starts.
    expect(parser.push(': next\n')).toEqual([{ id: '7', event: 'message', data: 'b' }]);
  });

  it('joins data lines, waits for the blank line, and keeps an id for the events after it', () => {
    const parser = new EventStreamParser();
    expect(parser.push('id: 3\ndata: one\ndata:two\n')).toEqual([]);
    expect(parser.push('\n')).toEqual([{ id: '3', event: 'message', data: 'one\ntwo' }]);
    expect(parser.push('event: status\ndata: x\n\n')).toEqual([{ id: '3', event: 'status', data: 'x' }]);
    expect(parser.lastEventId).toBe('3');
  });

  it('ignores a retry that is not a number and an event without data', () => {
    const parser = new EventStreamParser();
    expect(parser.push('retry: soon\nevent: status\n\n')).toEqual([]);
    expect(parser.retryMs).toBeUndefined();
  });
});
