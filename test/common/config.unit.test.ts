import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configSchema, parseConfig } from '../../common/config';

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
  ])('rejects %j naming the variable', (env, message) => {
    expect(() => parseConfig(env)).toThrow(message);
  });

  it('stops a process started with a bad value, naming the variable', () => {
    const result = spawnSync(
      path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx'),
      ['-e', "require('./common/config').loadConfigOrExit()"],
      {
        cwd: path.join(__dirname, '..', '..'),
        env: { ...process.env, PRESIGNED_URL_EXPIRES_SECONDS: '-5' },
        encoding: 'utf8',
      },
    );
    expect(result.status).toBe(78);
    expect(result.stderr).toMatch(/PRESIGNED_URL_EXPIRES_SECONDS/);
  });
});
