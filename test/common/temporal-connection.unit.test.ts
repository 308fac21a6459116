import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../common/config';
import { temporalConnectionSettings } from '../../common/temporal-connection';

/** The connection to a self-hosted Temporal (plain gRPC) or a managed one (API key or mTLS, over TLS). */
describe('temporalConnectionSettings', () => {
  it('connects in plain gRPC to a self-hosted server', () => {
    expect(temporalConnectionSettings(parseConfig({ TEMPORAL_ADDRESS: 'temporal:7233' }))).toEqual({
      address: 'temporal:7233',
    });
  });

  it('sends an API key over TLS (Temporal Cloud)', () => {
    const config = parseConfig({
      TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233',
      TEMPORAL_NAMESPACE: 'media.a1b2c',
      TEMPORAL_API_KEY: 'key-123',
    });
    expect(temporalConnectionSettings(config)).toEqual({
      address: 'us-east-1.aws.api.temporal.io:7233',
      tls: true,
      apiKey: 'key-123',
    });
  });

  it('presents a client certificate (mTLS)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'temporal-tls-'));
    writeFileSync(path.join(dir, 'client.pem'), 'CERT');
    writeFileSync(path.join(dir, 'client.key'), 'KEY');
    const settings = temporalConnectionSettings(
      parseConfig({
        TEMPORAL_ADDRESS: 'media.a1b2c.tmprl.cloud:7233',
        TEMPORAL_TLS_CERT_PATH: path.join(dir, 'client.pem'),
        TEMPORAL_TLS_KEY_PATH: path.join(dir, 'client.key'),
      }),
    );
    expect(settings.tls).toEqual({ clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') } });
  });

  it('turns TLS on alone when asked', () => {
    expect(temporalConnectionSettings(parseConfig({ TEMPORAL_TLS: 'true' })).tls).toBe(true);
  });

  it('refuses a certificate without its key, and credentials without TLS, naming the variable', () => {
    expect(() => parseConfig({ TEMPORAL_TLS_CERT_PATH: '/etc/client.pem' })).toThrow(ConfigError);
    expect(() => parseConfig({ TEMPORAL_TLS_CERT_PATH: '/etc/client.pem' })).toThrow(/TEMPORAL_TLS_KEY_PATH: required/);
    expect(() => parseConfig({ TEMPORAL_API_KEY: 'key-123', TEMPORAL_TLS: 'false' })).toThrow(
      /TEMPORAL_TLS: cannot be off with TEMPORAL_API_KEY/,
    );
  });
});
