import { formatUrl } from '@aws-sdk/core/util';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { getEndpointFromInstructions } from '@smithy/core/endpoints';
import { extendedEncodeURIComponent } from '@smithy/core/protocols';
import type { Config } from './config';
import { createS3Client } from './s3';

export interface Presigner {
  client: S3Client;
  bucket: string;
  expiresInSeconds: number;
  /** URLs already signed, reused for the first half of their lifetime (see createPresigner). */
  cache?: Map<string, { url: string; reuseUntil: number }>;
  /** The bucket's endpoint and signer, resolved on the first URL (see bucketSigning). */
  signing?: Promise<BucketSigning>;
}

/** What every URL of the bucket shares: where it points and who signs it. */
interface BucketSigning {
  endpoint: URL;
  signer: S3RequestPresigner;
  signingRegion?: string;
  signingService?: string;
}

/** How many signed URLs a presigner keeps; the oldest is dropped first. */
const PRESIGNED_URL_CACHE_ENTRIES = 10_000;

/**
 * The process's presigner: URLs addressed the way clients reach S3 (S3_PUBLIC_ENDPOINT_URL when
 * set, else `s3`'s endpoint), each object signed once per half-lifetime: a client polling a job
 * every 100 ms gets the same URL (which browsers and CDNs can cache) while it is valid for at least
 * half of PRESIGNED_URL_EXPIRES_SECONDS, and the URL is not signed again on every poll.
 */
export function createPresigner(
  config: Pick<Config, 'S3_PUBLIC_ENDPOINT_URL' | 'S3_BUCKET_NAME' | 'PRESIGNED_URL_EXPIRES_SECONDS'> &
    Parameters<typeof createS3Client>[0],
  s3: S3Client,
): Presigner {
  const client = config.S3_PUBLIC_ENDPOINT_URL
    ? createS3Client({ ...config, S3_ENDPOINT_URL: config.S3_PUBLIC_ENDPOINT_URL })
    : s3;
  return {
    client,
    bucket: config.S3_BUCKET_NAME,
    expiresInSeconds: config.PRESIGNED_URL_EXPIRES_SECONDS,
    cache: new Map(),
  };
}

/**
 * The bucket's endpoint (path-style or virtual-hosted, as the client is configured) from the
 * client's own endpoint rules, and a signer made from the client's configuration: the same two
 * things getSignedUrl works out again for every URL, together with a copy of the client's whole
 * middleware stack, which made it cost about ten times the signature itself.
 */
async function bucketSigning(presigner: Presigner): Promise<BucketSigning> {
  const { client, bucket } = presigner;
  const resolved = await getEndpointFromInstructions({ Bucket: bucket }, GetObjectCommand, client.config);
  const authScheme = resolved.properties?.authSchemes?.[0] as
    { name?: string; signingName?: string; signingRegion?: string; signingRegionSet?: string[] } | undefined;
  const signingRegion =
    authScheme?.name === 'sigv4a' ? authScheme.signingRegionSet?.join(',') : authScheme?.signingRegion;
  return {
    endpoint: new URL(resolved.url),
    signer: new S3RequestPresigner({
      ...client.config,
      signingName: authScheme?.signingName,
      region: async () => signingRegion ?? (await client.config.region()),
    }),
    signingRegion,
    signingService: authScheme?.signingName,
  };
}

/**
 * A GET URL for the object at `key`, signed for expiresInSeconds: the URL getSignedUrl makes for
 * GetObject with the service's S3 client (createS3Client: checksums only where required, so a GET
 * carries no checksum parameters; test/common/presigner.unit.test.ts compares the two).
 */
async function signGetObject(presigner: Presigner, key: string): Promise<string> {
  presigner.signing ??= bucketSigning(presigner).catch((error: unknown) => {
    presigner.signing = undefined;
    throw error;
  });
  const { endpoint, signer, signingRegion, signingService } = await presigner.signing;
  const request: Parameters<S3RequestPresigner['presign']>[0] = {
    method: 'GET',
    protocol: endpoint.protocol,
    hostname: endpoint.hostname,
    port: endpoint.port ? Number(endpoint.port) : undefined,
    // The key's segments are escaped as the SDK serializes GetObject's greedy {Key+} label.
    path: `${endpoint.pathname.replace(/\/$/, '')}/${key.split('/').map(extendedEncodeURIComponent).join('/')}`,
    query: { 'x-id': 'GetObject' },
    headers: {},
  };
  const presigned = await signer.presign(request, {
    expiresIn: presigner.expiresInSeconds,
    signingRegion,
    signingService,
  });
  return formatUrl(presigned);
}

export async function presignedUrl(presigner: Presigner, key: string): Promise<string> {
  const { cache } = presigner;
  const now = Date.now();
  const cached = cache?.get(key);
  if (cached && cached.reuseUntil > now) return cached.url;
  const url = await signGetObject(presigner, key);
  if (cache) {
    cache.delete(key);
    if (cache.size >= PRESIGNED_URL_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(key, { url, reuseUntil: now + (presigner.expiresInSeconds * 1000) / 2 });
  }
  return url;
}
