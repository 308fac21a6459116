/**
 * Failure types that can never succeed on retry. Activities throw ApplicationFailures of these
 * types; the workflow's retry policies list them as non-retryable.
 */
export const NonRetryable = {
  JobNotFound: 'JobNotFound',
  BatchNotFound: 'BatchNotFound',
  /** The provider rejected the request (4xx other than 429): the same request fails again. */
  InvalidInput: 'InvalidInput',
  /** The prediction ran and failed, or was cancelled, upstream. */
  PredictionFailed: 'PredictionFailed',
  PredictionCanceled: 'PredictionCanceled',
  /** The provider no longer serves the output (404/410 on its URL). */
  OutputExpired: 'OutputExpired',
  OutputTooLarge: 'OutputTooLarge',
  /** The job ended, or its outputs are being removed, before this attempt recorded its output. */
  JobEnded: 'JobEnded',
  /** The output failed on its source's or storage's own error as often as its policy allows. */
  OutputAttemptsExhausted: 'OutputAttemptsExhausted',
  UnsupportedMediaType: 'UnsupportedMediaType',
  /** The output URL points somewhere the service may not fetch from (not HTTPS, private address). */
  ForbiddenSource: 'ForbiddenSource',
  /** A webhook URL that is not HTTPS or resolves to a private address. */
  ForbiddenWebhookUrl: 'ForbiddenWebhookUrl',
  /** The worker has no WEBHOOK_SIGNING_SECRET. */
  WebhookNotConfigured: 'WebhookNotConfigured',
} as const;

export type NonRetryableType = (typeof NonRetryable)[keyof typeof NonRetryable];
