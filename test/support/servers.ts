export const TEST_S3_CREDENTIALS = { accessKey: 'media-test-access', secretKey: 'media-test-secret' };

/** The servers global-setup started, shared by every test file. */
export interface TestServers {
  temporalAddress: string;
  databaseUrl: string;
  s3Endpoint: string;
  bucket: string;
  workflowBundlePath: string;
  workDir: string;
}

export function testServers(): TestServers {
  const raw = process.env.MEDIA_TEST_SERVERS;
  if (!raw) throw new Error('the test servers are not running: run the tests with `npm test`');
  return JSON.parse(raw) as TestServers;
}
