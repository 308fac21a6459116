import type { Config } from '../../common/config';
import { FakeProvider } from './fake-provider';
import type { MediaProvider } from './provider';
import { ReplicateProvider } from './replicate-provider';

export function createProvider(config: Config): MediaProvider {
  switch (config.MEDIA_GENERATOR_PROVIDER) {
    case 'fake':
      return new FakeProvider({ latencyMs: config.FAKE_PROVIDER_LATENCY_MS });
    case 'replicate':
      return new ReplicateProvider({
        // parseConfig refuses MEDIA_GENERATOR_PROVIDER=replicate without a token.
        apiToken: config.REPLICATE_API_TOKEN!,
        baseUrl: config.REPLICATE_BASE_URL,
        predictionDeadlineSeconds: config.REPLICATE_PREDICTION_DEADLINE_SECONDS,
        allowPrivateDownloads: config.MEDIA_FETCH_ALLOW_PRIVATE,
        maxOutputBytes: config.MEDIA_MAX_BYTES,
      });
  }
}
