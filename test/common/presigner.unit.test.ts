import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { presignedUrl, type Presigner } from '../../common/presigner';
import { createS3Client } from '../../common/s3';

const credentials = {
  S3_ACCESS_KEY_ID: 'AKIDEXAMPLE',
  S3_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};

/** Each way the service is deployed against S3: a local server, one behind a path, AWS itself. */
const deployments = [
  ['a local S3 server, path-style', 'http://127.0.0.1:9000', 'us-east-1', true],
  ['a public endpoint under a path, path-style', 'https://media.example.com/storage', 'eu-west-1', true],
  ['AWS, virtual-hosted', 'https://s3.eu-west-1.amazonaws.com', 'eu-west-1', false],
  ['AWS, path-style', 'https://s3.ap-southeast-2.amazonaws.com', 'ap-southeast-2', true],
] as const;

const keys = [
  'jobs/0b6f2f7e-4c55-4e5e-9c1e-0d8e1d9f1a2b/0.png',
  'console/origin-probe',
  "odd names/a b+c%d!'()*~.webp",
  'unicode/café-画像.jpg',
  'double//slash/',
];

describe('presigned URLs', () => {
  beforeEach(() => {
    // One signing time for both signers: the signature covers it.
    jest.useFakeTimers({ now: new Date('2026-12-01T12:00:00Z'), doNotFake: ['nextTick', 'setImmediate'] });
  });
  afterEach(() => jest.useRealTimers());

  it.each(deployments)(
    "are the URLs getSignedUrl makes for GetObject with the service's client (%s)",
    async (_name, endpoint, region, pathStyle) => {
      const client = createS3Client({
        ...credentials,
        S3_ENDPOINT_URL: endpoint,
        S3_REGION: region,
        S3_FORCE_PATH_STYLE: pathStyle,
      });
      const presigner: Presigner = { client, bucket: 'media-bucket', expiresInSeconds: 3600 };
      for (const key of keys) {
        const expected = await getSignedUrl(client, new GetObjectCommand({ Bucket: 'media-bucket', Key: key }), {
          expiresIn: 3600,
        });
        await expect(presignedUrl(presigner, key)).resolves.toBe(expected);
      }
    },
  );

  it('are signed once per half-lifetime, then signed again', async () => {
    const client = createS3Client({
      ...credentials,
      S3_ENDPOINT_URL: 'http://127.0.0.1:9000',
      S3_REGION: 'us-east-1',
      S3_FORCE_PATH_STYLE: true,
    });
    const presigner: Presigner = { client, bucket: 'media', expiresInSeconds: 600, cache: new Map() };
    const first = await presignedUrl(presigner, 'jobs/a/0.png');
    jest.setSystemTime(new Date('2026-12-01T12:04:59Z'));
    await expect(presignedUrl(presigner, 'jobs/a/0.png')).resolves.toBe(first);
    jest.setSystemTime(new Date('2026-12-01T12:05:01Z'));
    const second = await presignedUrl(presigner, 'jobs/a/0.png');
    expect(second).not.toBe(first);
    expect(new URL(second).searchParams.get('X-Amz-Date')).toBe('20261201T120501Z');
  });
});
