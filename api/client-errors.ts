import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Node answers a request it cannot parse (a request line and headers over its 16 KB limit, or
 * malformed HTTP) by itself, with an empty body, before Express sees it. These answers are
 * problems too, like every other error of the API.
 */
export function answerUnparsableRequestsWithProblems(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, title, detail] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [
            431,
            'Request header fields too large',
            'The request line and headers are over the 16 KB the server reads; send a shorter URL and fewer headers.',
          ]
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request timeout', 'The request did not arrive in time.']
          : [400, 'Bad request', 'The request is not valid HTTP.'];
    const body = JSON.stringify({ type: 'about:blank', title, status, detail });
    socket.end(
      `HTTP/1.1 ${status} ${title}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}
