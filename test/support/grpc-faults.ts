import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';

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
