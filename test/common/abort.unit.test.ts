import { getEventListeners } from 'node:events';
import { abortWhen } from '../../common/abort';

/** Following a long-lived signal from short-lived work (common/abort.ts). */
describe('abortWhen', () => {
  it('aborts the controller when the signal fires, and leaves no listener once detached', () => {
    const stopping = new AbortController();
    const requests = Array.from({ length: 3 }, () => new AbortController());
    const detachers = requests.map((request) => abortWhen(stopping.signal, request));
    expect(getEventListeners(stopping.signal, 'abort')).toHaveLength(3);
    // Two requests were answered: only the third still follows the process's signal.
    detachers[0]!();
    detachers[1]!();
    expect(getEventListeners(stopping.signal, 'abort')).toHaveLength(1);
    stopping.abort();
    expect(requests.map((request) => request.signal.aborted)).toEqual([false, false, true]);
  });

  it('aborts at once on a signal that already fired, and does nothing without one', () => {
    const stopped = new AbortController();
    stopped.abort();
    const late = new AbortController();
    abortWhen(stopped.signal, late)();
    expect(late.signal.aborted).toBe(true);
    const alone = new AbortController();
    abortWhen(undefined, alone)();
    expect(alone.signal.aborted).toBe(false);
  });
});
