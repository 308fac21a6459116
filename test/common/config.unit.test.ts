import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, configSchema, loadConfigOrExit, parseConfig, sseDatabaseConnections } from '../../common/config';

describe('configuration', () => {
  it('ships no usable secret in .env.example', () => {
    const example = readFileSync(path.join(__dirname, '..', '..', '.env.example'), 'utf8');
    const secrets = [...example.matchAll(/^#?\s*(WEBHOOK_SIGNING_SECRET|REPLICATE_API_TOKEN)=(.*)$/gm)].map(
      ([, name, value]) => ({ name: name!, value: value!.trim() }),
    );
    expect(secrets.map((secret) => secret.name).sort()).toEqual(['REPLICATE_API_TOKEN', 'WEBHOOK_SIGNING_SECRET']);
    expect(
      configSchema.shape.WEBHOOK_SIGNING_SECRET.safeParse(
        secrets.find((secret) => secret.name === 'WEBHOOK_SIGNING_SECRET')!.value,
      ).success,
    ).toBe(false);
    expect(secrets.find((secret) => secret.name === 'REPLICATE_API_TOKEN')!.value).toMatch(/\.\.\.|</);
  });

  it('defaults to the local stack that npm run dev starts', () => {
    expect(parseConfig({})).toMatchObject({
      PORT: 8000,
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_TASK_QUEUE: 'media-generation',
      S3_ENDPOINT_URL: 'http://127.0.0.1:9000',
      S3_FORCE_PATH_STYLE: true,
      MEDIA_GENERATOR_PROVIDER: 'fake',
      MEDIA_FETCH_ALLOW_PRIVATE: false,
      MEDIA_MAX_BYTES: 2 * 1024 ** 3,
    });
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT/],
    [{ DATABASE_URL: 'mysql://x/y' }, /DATABASE_URL/],
    [{ S3_FORCE_PATH_STYLE: 'maybe' }, /S3_FORCE_PATH_STYLE/],
    [{ MEDIA_GENERATOR_PROVIDER: 'openai' }, /MEDIA_GENERATOR_PROVIDER/],
    [{ MEDIA_GENERATOR_PROVIDER: 'replicate' }, /REPLICATE_API_TOKEN: required/],
    [{ S3_BUCKET_NAME: 'Bad_Bucket' }, /S3_BUCKET_NAME/],
    [{ PRESIGNED_URL_EXPIRES_SECONDS: '-5' }, /PRESIGNED_URL_EXPIRES_SECONDS/],
    [{ RECONCILE_INTERVAL_SECONDS: '3' }, /RECONCILE_INTERVAL_SECONDS: must be 0 \(off\) or at least 5/],
    [{ WEBHOOK_SIGNING_SECRET: 'whsec_c2hvcnQ=' }, /WEBHOOK_SIGNING_SECRET: must encode at least 24 bytes/],
    [{ DATABASE_POOL_SIZE: '4', SSE_DATABASE_CONNECTIONS: '4' }, /SSE_DATABASE_CONNECTIONS: must be less than/],
    [{ WORKER_PROMOTE_ON_START: 'true' }, /WORKER_PROMOTE_ON_START: needs WORKER_BUILD_ID/],
    [{ WORKER_DEPLOYMENT_NAME: 'media.generation' }, /WORKER_DEPLOYMENT_NAME/],
  ])('rejects %j naming the variable', (env, message) => {
    expect(() => parseConfig(env)).toThrow(message);
  });

  it('takes an empty value as unset, and reads boolean flags in their usual spellings', () => {
    expect(parseConfig({ PORT: '', S3_FORCE_PATH_STYLE: '' })).toMatchObject({ PORT: 8000, S3_FORCE_PATH_STYLE: true });
    for (const on of ['true', '1', 'yes', 'on'])
      expect(parseConfig({ MEDIA_FETCH_ALLOW_PRIVATE: on }).MEDIA_FETCH_ALLOW_PRIVATE).toBe(true);
    for (const off of ['false', '0', 'no', 'off'])
      expect(parseConfig({ S3_FORCE_PATH_STYLE: off }).S3_FORCE_PATH_STYLE).toBe(false);
  });

  it('runs the reconciler every 30 s unless RECONCILE_INTERVAL_SECONDS says, 0 leaving it to other workers', () => {
    expect(parseConfig({}).RECONCILE_INTERVAL_SECONDS).toBe(30);
    expect(parseConfig({ RECONCILE_INTERVAL_SECONDS: '0' }).RECONCILE_INTERVAL_SECONDS).toBe(0);
    expect(parseConfig({ RECONCILE_INTERVAL_SECONDS: '5' }).RECONCILE_INTERVAL_SECONDS).toBe(5);
  });

  it('leaves a worker unversioned unless WORKER_BUILD_ID is set', () => {
    const defaults = parseConfig({});
    expect(defaults).toMatchObject({ WORKER_DEPLOYMENT_NAME: 'media-generation', WORKER_PROMOTE_ON_START: false });
    expect(defaults.WORKER_BUILD_ID).toBeUndefined();
    expect(parseConfig({ WORKER_BUILD_ID: 'auto', WORKER_PROMOTE_ON_START: 'true' })).toMatchObject({
      WORKER_BUILD_ID: 'auto',
      WORKER_PROMOTE_ON_START: true,
    });
  });

  it('gives event streams a quarter of the pool (1 to 4 connections) unless SSE_DATABASE_CONNECTIONS says', () => {
    const share = (env: Record<string, string>) => sseDatabaseConnections(parseConfig(env));
    expect([share({}), share({ DATABASE_POOL_SIZE: '2' }), share({ DATABASE_POOL_SIZE: '10' })]).toEqual([4, 1, 2]);
    expect(share({ DATABASE_POOL_SIZE: '10', SSE_DATABASE_CONNECTIONS: '6' })).toBe(6);
  });

  it('names every bad variable in one error', () => {
    const error = (() => {
      try {
        parseConfig({ PORT: 'eighty', S3_BUCKET_NAME: 'Bad_Bucket' });
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/PORT[\s\S]*S3_BUCKET_NAME/);
  });

  it('stops the process with status 78 and the message on stderr when a value is bad (loadConfigOrExit)', () => {
    const exit = jest.spyOn(process, 'exit').mockImplementation(((code: number) => {
      throw new Error(`exit ${code}`);
    }) as never);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(() => loadConfigOrExit({ PRESIGNED_URL_EXPIRES_SECONDS: '-5' })).toThrow('exit 78');
      expect(stderr).toHaveBeenCalledWith(
        expect.stringMatching(/^Invalid configuration:\n {2}PRESIGNED_URL_EXPIRES_SECONDS: /),
      );
      expect(loadConfigOrExit({ PORT: '8123' }).PORT).toBe(8123);
    } finally {
      exit.mockRestore();
      stderr.mockRestore();
    }
  });
});
