import { createHmac } from 'node:crypto';
import { signWebhook, webhookKey } from '../../common/webhooks';
import { webhookMessageId } from '../../common/temporal';
import { verifyWebhook } from '../support/webhooks';

const SECRET = `whsec_${Buffer.from('a key of at least twenty-four bytes').toString('base64')}`;

/** Signed as a Standard Webhooks receiver checks it: the headers a delivery sends, over its exact body. */
function headersFor(messageId: string, timestamp: number, body: string, secret = SECRET) {
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(secret, messageId, timestamp, body),
  };
}

describe('Standard Webhooks signer', () => {
  const now = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({ event: 'completed', job_id: 'a', status: 'COMPLETED' });

  it('signs v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"> with the key after whsec_', () => {
    const expected = createHmac('sha256', Buffer.from('a key of at least twenty-four bytes'))
      .update(`msg_1.1700000000.${body}`)
      .digest('base64');
    expect(signWebhook(SECRET, 'msg_1', 1_700_000_000, body)).toBe(`v1,${expected}`);
    expect(webhookKey(SECRET).toString()).toBe('a key of at least twenty-four bytes');
  });

  it('is accepted by an independent receiver, and only for the body, id, timestamp and secret it signed', () => {
    const headers = headersFor('msg_job_completed', now, body);
    expect(verifyWebhook(SECRET, headers, body)).toBe(true);
    expect(verifyWebhook(SECRET, headers, body.replace('COMPLETED', 'FAILED'))).toBe(false);
    expect(verifyWebhook(SECRET, { ...headers, 'webhook-id': 'msg_other' }, body)).toBe(false);
    expect(verifyWebhook(SECRET, { ...headers, 'webhook-timestamp': String(now + 1) }, body)).toBe(false);
    const otherSecret = `whsec_${Buffer.from('another key, also long enough').toString('base64')}`;
    expect(verifyWebhook(otherSecret, headers, body)).toBe(false);
  });

  it('gives each message a stable id: one per job and event, one per output for output events', () => {
    expect(webhookMessageId('job-1', 'completed')).toBe('msg_job-1_completed');
    expect(webhookMessageId('job-1', 'output', 0)).toBe('msg_job-1_output_0');
    expect(webhookMessageId('job-1', 'output', 1)).not.toBe(webhookMessageId('job-1', 'output', 0));
  });

  it("gives a retry's messages ids of their own, so that a FAILED again is not a duplicate", () => {
    expect(webhookMessageId('job-1', 'failed', undefined, 2)).toBe('msg_job-1_retry_2_failed');
    expect(webhookMessageId('job-1', 'output', 1, 2)).toBe('msg_job-1_retry_2_output_1');
    expect(webhookMessageId('job-1', 'failed', undefined, 2)).not.toBe(webhookMessageId('job-1', 'failed'));
  });
});
