import type { Config } from '../../common/config';
import { FakeProvider } from './fake-provider';
import type { MediaProvider } from './provider';

export function createProvider(config: Config): MediaProvider {
  switch (config.MEDIA_GENERATOR_PROVIDER) {
    case 'fake':
      return new FakeProvider({ latencyMs: config.FAKE_PROVIDER_LATENCY_MS });
    case 'replicate':
      throw new Error('the replicate provider is not available in this build');
  }
}
