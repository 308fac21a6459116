import { readFileSync } from 'node:fs';
import type { Config } from './config';

export type TemporalConnectionConfig = Pick<
  Config,
  'TEMPORAL_ADDRESS' | 'TEMPORAL_API_KEY' | 'TEMPORAL_TLS' | 'TEMPORAL_TLS_CERT_PATH' | 'TEMPORAL_TLS_KEY_PATH'
>;

/** What the API's and the worker's connections to Temporal share: address, TLS (mTLS), API key. */
export interface TemporalConnectionSettings {
  address: string;
  tls?: true | { clientCertPair: { crt: Buffer; key: Buffer } };
  apiKey?: string;
}

/**
 * The connection options for a self-hosted server (plain gRPC, as on the local cluster) or a managed
 * one such as Temporal Cloud: an API key, or a client certificate (mTLS), each over TLS.
 */
export function temporalConnectionSettings(config: TemporalConnectionConfig): TemporalConnectionSettings {
  const settings: TemporalConnectionSettings = { address: config.TEMPORAL_ADDRESS };
  if (config.TEMPORAL_TLS_CERT_PATH && config.TEMPORAL_TLS_KEY_PATH) {
    settings.tls = {
      clientCertPair: {
        crt: readFileSync(config.TEMPORAL_TLS_CERT_PATH),
        key: readFileSync(config.TEMPORAL_TLS_KEY_PATH),
      },
    };
  } else if (config.TEMPORAL_TLS ?? Boolean(config.TEMPORAL_API_KEY)) {
    settings.tls = true;
  }
  if (config.TEMPORAL_API_KEY) settings.apiKey = config.TEMPORAL_API_KEY;
  return settings;
}
