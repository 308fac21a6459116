import { isDatabaseUnavailable } from '../../db/availability';

/** Which database errors are an outage (answered 503 with Retry-After) rather than a bug (500). */
describe('isDatabaseUnavailable', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['a server shutting down', Object.assign(new Error('terminating connection'), { code: '57P01' })],
    ['a full server (max_connections)', Object.assign(new Error('sorry, too many clients already'), { code: '53300' })],
    ['an outage wrapped as the cause', new Error('query failed', { cause: { code: '08006' } })],
  ])('counts %s as unavailable', (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it('does not count a bug in a query', () => {
    expect(isDatabaseUnavailable(Object.assign(new Error('syntax error'), { code: '42601' }))).toBe(false);
    expect(isDatabaseUnavailable(new Error('undefined is not a function'))).toBe(false);
  });
});
