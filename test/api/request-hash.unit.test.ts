import { requestHash } from '../../api/submission';
import { generateRequestSchema } from '../../api/schemas';

/** The identity of a submitted body for Idempotency-Key: field order and spelled-out defaults do not change it. */
describe('requestHash', () => {
  const hash = (body: Record<string, unknown>) => requestHash(generateRequestSchema.parse(body));
  const base = { model: 'a/b', prompt: 'a lighthouse', webhook_url: 'https://example.com/hooks' };

  it('is the same with the defaults spelled out', () => {
    expect(hash({ ...base, priority: 'normal' })).toBe(hash(base));
    expect(hash({ ...base, num_outputs: 1, output_format: 'png' })).toBe(hash(base));
    expect(hash({ ...base, webhook_events_filter: ['completed', 'failed', 'cancelled'] })).toBe(hash(base));
  });

  it('is the same whatever the order of the events and of the fields', () => {
    expect(hash({ ...base, webhook_events_filter: ['output', 'completed'] })).toBe(
      hash({ webhook_events_filter: ['completed', 'output'], ...base }),
    );
    expect(hash({ ...base, webhook_events_filter: ['failed', 'cancelled', 'completed'] })).toBe(hash(base));
  });

  it('differs when a value does', () => {
    expect(hash({ ...base, priority: 'low' })).not.toBe(hash(base));
    expect(hash({ ...base, webhook_events_filter: ['completed'] })).not.toBe(hash(base));
    expect(hash({ ...base, prompt: 'a lighthouse at dusk' })).not.toBe(hash(base));
  });
});
