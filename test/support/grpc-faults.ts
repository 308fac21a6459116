import { InterceptingCall, Metadata, status as GrpcStatus, type Interceptor } from '@grpc/grpc-js';

/** gRPC interceptors for the API's Temporal connection (TestStackOptions.apiTemporalInterceptors). */

export const isStart = (path: string) => path.endsWith('/StartWorkflowExecution');

/** Holds every answer to StartWorkflowExecution for `delayMs`: the server has started the workflow, the API hears of it late. */
export function delayStartAnswers(delayMs: number): Interceptor {
  return (options, nextCall) => {
    if (!isStart(options.method_definition.path)) return new InterceptingCall(nextCall(options));
    return new InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        const later = (deliver: () => void) => void setTimeout(deliver, delayMs);
        next(metadata, {
          onReceiveMetadata: (received, pass) => later(() => pass(received)),
          onReceiveMessage: (message, pass) => later(() => pass(message)),
          onReceiveStatus: (received, pass) => later(() => pass(received)),
        });
      },
    });
  };
}

/**
 * Fails StartWorkflowExecution with UNAVAILABLE before it leaves the API: the server never hears of
 * it. Every start, or only the `nth` (counted from 1) once `afterMs` have passed.
 */
export function dropStarts(options: { nth?: number; afterMs?: number } = {}): Interceptor {
  let starts = 0;
  return (callOptions, nextCall) => {
    if (!isStart(callOptions.method_definition.path)) return new InterceptingCall(nextCall(callOptions));
    starts += 1;
    if (options.nth !== undefined && starts !== options.nth) return new InterceptingCall(nextCall(callOptions));
    return new InterceptingCall(nextCall(callOptions), {
      start(_metadata, listener) {
        setTimeout(
          () =>
            listener.onReceiveStatus({
              code: GrpcStatus.UNAVAILABLE,
              details: 'the start was dropped before it left (test)',
              metadata: new Metadata(),
            }),
          options.afterMs ?? 0,
        );
      },
      sendMessage: () => undefined,
      halfClose: () => undefined,
    });
  };
}
