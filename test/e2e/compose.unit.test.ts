/**
 * Static checks of the container deployment (docker-compose.yml, Dockerfile, .env.example),
 * so that `docker compose up` has a fair chance to work the first time. No Docker engine needed:
 * the files are parsed, and compose's ${...} substitution is reproduced for the variables used.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { parse } from 'yaml';
import { configSchema, parseConfig } from '../../common/config';

const ROOT = path.join(__dirname, '..', '..');
const readRepoFile = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

type Env = Record<string, string | undefined>;
type PortSpec = string | number | { target?: number | string; published?: number | string };
interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: PortSpec[];
  depends_on?: string[] | Record<string, { condition?: string } | null>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  container_name?: string;
  volumes?: string[];
  restart?: string;
}
interface ComposeFile {
  services: Record<string, Service>;
}

/** What the application cannot run without in containers: its defaults name 127.0.0.1. */
const REQUIRED_APP_VARIABLES = [
  'DATABASE_URL',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'S3_ENDPOINT_URL',
  'S3_ACCESS_KEY_ID',
  'S3_SECRET_ACCESS_KEY',
  'S3_BUCKET_NAME',
];
const APP_SERVICES = ['api', 'worker', 'migrate'];
const CONFIG_KEYS = Object.keys(configSchema.shape);
/** Read by the OpenTelemetry SDK itself (docs/api.md, "Tracing"), not by common/config.ts. */
const OPENTELEMETRY_SDK_VARIABLES = ['OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG'];
/** The image loads its own workflow bundle; fault injection is for the test suite (docs/configuration.md). */
const NOT_PASSED_TO_CONTAINERS = ['WORKFLOW_BUNDLE_PATH', 'FAULT_INJECTION_PAUSE_AT'];

// ---- compose's variable substitution (https://docs.docker.com/reference/compose-file/interpolation/)

function closingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  throw new Error(`unclosed \${ in ${JSON.stringify(text)}`);
}

function expand(expression: string, env: Env): string {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(expression);
  if (!match) throw new Error(`unsupported substitution \${${expression}}`);
  const [, name, operator, operand = ''] = match as unknown as [string, string, string | undefined, string | undefined];
  const value = env[name];
  const present = operator?.startsWith(':') ? value !== undefined && value !== '' : value !== undefined;
  switch (operator) {
    case undefined:
      if (value === undefined) throw new Error(`\${${name}} has no default`);
      return value;
    case ':-':
    case '-':
      return present ? value! : interpolate(operand, env);
    case ':?':
    case '?':
      if (!present) throw new Error(`\${${name}} is required: ${operand}`);
      return value!;
    default:
      return present ? interpolate(operand, env) : '';
  }
}

/** Substitutes like compose does, except that a variable with neither value nor default throws. */
function interpolate(text: string, env: Env): string {
  let out = '';
  for (let i = 0; i < text.length;) {
    if (text[i] !== '$') {
      out += text[i++];
    } else if (text[i + 1] === '$') {
      out += '$';
      i += 2;
    } else if (text[i + 1] === '{') {
      const end = closingBrace(text, i + 1);
      out += expand(text.slice(i + 2, end), env);
      i = end + 1;
    } else {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1))?.[0];
      if (!name) {
        out += text[i++];
        continue;
      }
      out += expand(name, env);
      i += 1 + name.length;
    }
  }
  return out;
}

function allStrings(node: unknown, at = ''): Array<[string, string]> {
  if (typeof node === 'string') return [[at, node]];
  if (Array.isArray(node)) return node.flatMap((item, index) => allStrings(item, `${at}[${index}]`));
  if (node && typeof node === 'object')
    return Object.entries(node).flatMap(([key, value]) => allStrings(value, at ? `${at}.${key}` : key));
  return [];
}

// ---- helpers over the parsed files

const composeText = readRepoFile('docker-compose.yml');
const compose = parse(composeText, { merge: true }) as ComposeFile;
const services = compose.services;

function service(name: string): Service {
  const found = services[name];
  if (!found) throw new Error(`docker-compose.yml has no service '${name}'`);
  return found;
}

/** A service's environment entries as written: a key without a value maps to null. */
function declaredEnvironment(name: string): Array<[string, string | null]> {
  const declared = service(name).environment ?? {};
  return Array.isArray(declared)
    ? declared.map((item) => {
        const [key, ...rest] = item.split('=');
        return [key!, rest.length ? rest.join('=') : null];
      })
    : Object.entries(declared).map(([key, value]) => [key, value === null ? null : String(value)]);
}

function declaredVariables(name: string): string[] {
  return declaredEnvironment(name).map(([key]) => key);
}

/** The container environment compose would give a service, for the given shell/.env variables. */
function containerEnv(name: string, shell: Env = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of declaredEnvironment(name)) {
    // A key without a value takes the shell's value, and is left out when the shell has none.
    const resolved = value === null ? shell[key] : interpolate(value, shell);
    if (resolved !== undefined) env[key] = resolved;
  }
  return env;
}

/** Entrypoint and command as the container receives them (after compose turns $$ into $). */
function commandText(name: string): string {
  const { entrypoint, command } = service(name);
  return interpolate(
    [entrypoint, command]
      .flat()
      .filter((part) => part !== undefined)
      .join(' '),
    {},
  );
}

function publishedPorts(name: string): Array<{ host: number; container: number }> {
  return (service(name).ports ?? []).map((spec) => {
    if (typeof spec === 'object') return { host: Number(spec.published), container: Number(spec.target) };
    const parts = String(spec).split('/')[0]!.split(':');
    return { host: parts.length > 1 ? Number(parts.at(-2)) : Number.NaN, container: Number(parts.at(-1)) };
  });
}

function dependencies(name: string): Array<[string, string | undefined]> {
  const dependsOn = service(name).depends_on;
  if (!dependsOn) return [];
  if (Array.isArray(dependsOn)) return dependsOn.map((dependency) => [dependency, undefined]);
  return Object.entries(dependsOn).map(([dependency, options]) => [dependency, options?.condition]);
}

function hostOf(address: string): string {
  return address.includes('://') ? new URL(address).hostname : address.split(':')[0]!;
}

// ---- docker-compose.yml

describe('docker-compose.yml', () => {
  it('parses, and every ${...} in it has a default (no variable needs to be set)', () => {
    expect(Object.keys(services).length).toBeGreaterThan(0);
    const failures = allStrings(compose).flatMap(([where, value]) => {
      try {
        interpolate(value, {});
        return [];
      } catch (error) {
        return [`${where}: ${(error as Error).message}`];
      }
    });
    expect(failures).toEqual([]);
  });

  it('escapes every shell $ in commands as $$, so compose leaves them to the shell', () => {
    const unescaped = allStrings(compose).filter(
      ([where, value]) => /\.(command|entrypoint)\b/.test(where) && value.replaceAll('$$', '').includes('$'),
    );
    expect(unescaped.map(([where]) => where)).toEqual([]);
  });

  it.each(['api', 'worker'])('sets on %s every variable the application needs in a container', (name) => {
    const env = containerEnv(name);
    for (const variable of REQUIRED_APP_VARIABLES) expect(env).toHaveProperty(variable);
  });

  it.each(APP_SERVICES)('sets on %s only variables that common/config.ts or the OpenTelemetry SDK reads', (name) => {
    const unknown = declaredVariables(name).filter(
      (key) => !CONFIG_KEYS.includes(key) && !OPENTELEMETRY_SDK_VARIABLES.includes(key),
    );
    expect(unknown).toEqual([]);
  });

  it.each(APP_SERVICES)('passes %s every setting, but those the image fixes', (name) => {
    const declared = declaredVariables(name);
    const missing = [...CONFIG_KEYS, ...OPENTELEMETRY_SDK_VARIABLES].filter(
      (key) => !declared.includes(key) && !NOT_PASSED_TO_CONTAINERS.includes(key),
    );
    expect(missing).toEqual([]);
  });

  it.each(APP_SERVICES)('gives %s a configuration that parses, with no empty values', (name) => {
    const env = containerEnv(name);
    expect(Object.entries(env).filter(([, value]) => value === '')).toEqual([]);
    expect(() => parseConfig(env)).not.toThrow();
  });

  it('gives api, worker and migrate the same environment', () => {
    expect(containerEnv('worker')).toEqual(containerEnv('api'));
    expect(containerEnv('migrate')).toEqual(containerEnv('api'));
  });

  it('points the application at the compose services, and presigns URLs for the host', () => {
    const config = parseConfig(containerEnv('api'));
    expect(services).toHaveProperty(hostOf(config.DATABASE_URL));
    expect(services).toHaveProperty(hostOf(config.TEMPORAL_ADDRESS));
    expect(services).toHaveProperty(hostOf(config.S3_ENDPOINT_URL));
    expect(config.TEMPORAL_NAMESPACE).toBe('default');
    expect(config.TEMPORAL_TASK_QUEUE).toBe('media-generation');
    expect(config.S3_PUBLIC_ENDPOINT_URL).toBe('http://localhost:9000');
    expect(config.MEDIA_GENERATOR_PROVIDER).toBe('fake');
    expect(containerEnv('api').AUTH_MODE).toBe('required');
  });

  it('switches to Replicate by variables only', () => {
    const config = parseConfig(
      containerEnv('worker', { MEDIA_GENERATOR_PROVIDER: 'replicate', REPLICATE_API_TOKEN: 'r8_test' }),
    );
    expect(config.MEDIA_GENERATOR_PROVIDER).toBe('replicate');
    expect(config.REPLICATE_API_TOKEN).toBe('r8_test');
    expect(config.REPLICATE_BASE_URL).toBe('https://api.replicate.com/v1');
  });

  it('switches to an external S3 by variables only', () => {
    const shell = {
      S3_ENDPOINT_URL: 'https://s3.eu-west-1.amazonaws.com',
      S3_REGION: 'eu-west-1',
      S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      S3_SECRET_ACCESS_KEY: 'secret',
      S3_BUCKET_NAME: 'my-media',
      S3_FORCE_PATH_STYLE: 'false',
    };
    const config = parseConfig(containerEnv('api', shell));
    expect(config).toMatchObject({
      S3_ENDPOINT_URL: shell.S3_ENDPOINT_URL,
      S3_REGION: 'eu-west-1',
      S3_BUCKET_NAME: 'my-media',
      S3_FORCE_PATH_STYLE: false,
    });
    expect(config.S3_PUBLIC_ENDPOINT_URL).toBe(shell.S3_ENDPOINT_URL);
    // The bucket is ensured on the S3 the application uses.
    expect(containerEnv('create-bucket', shell)).toMatchObject({
      S3_ENDPOINT_URL: shell.S3_ENDPOINT_URL,
      S3_BUCKET_NAME: 'my-media',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_DEFAULT_REGION: 'eu-west-1',
    });
  });

  it('publishes the contract ports', () => {
    const expected: Array<[string, number]> = [
      ['api', 8000],
      ['temporal', 7233],
      ['temporal-ui', 8080],
      ['s3', 9000],
      ['postgres', 5432],
    ];
    for (const [name, port] of expected) expect(publishedPorts(name)).toContainEqual({ host: port, container: port });
  });

  it('lets the worker scale: no published port and no fixed container name', () => {
    expect(service('worker').ports ?? []).toEqual([]);
    expect(service('worker').container_name).toBeUndefined();
  });

  it('pins every image to an explicit version tag, never latest', () => {
    for (const [name, definition] of Object.entries(services)) {
      expect([name, typeof definition.image]).toEqual([name, 'string']);
      const match = /^(?<repository>[^\s:@]+(?::\d+\/[^\s:@]+)?):(?<tag>[\w][\w.-]*)$/.exec(definition.image!);
      expect([name, match?.groups?.tag]).not.toEqual([name, undefined]);
      expect([name, match!.groups!.tag]).not.toEqual([name, 'latest']);
      // Images that are pulled carry a version number; the application's own image is built here.
      if (definition.build === undefined)
        expect([name, match!.groups!.tag]).toEqual([name, expect.stringMatching(/^v?\d+\.\d+/)]);
    }
  });

  it('never uses the deprecated temporalio/auto-setup image', () => {
    for (const definition of Object.values(services)) expect(definition.image).not.toMatch(/auto-setup/);
    expect(service('temporal').image).toMatch(/^temporalio\/server:/);
  });

  it('gives every depends_on a condition that fits the service it waits for', () => {
    for (const name of Object.keys(services)) {
      for (const [dependency, condition] of dependencies(name)) {
        expect([name, dependency, condition]).toEqual([
          name,
          dependency,
          expect.stringMatching(/^service_(started|healthy|completed_successfully)$/),
        ]);
        expect(services).toHaveProperty(dependency);
        if (condition === 'service_healthy')
          expect([dependency, services[dependency]!.healthcheck?.test]).toEqual([dependency, expect.anything()]);
        // A one-shot that restarts never completes.
        if (condition === 'service_completed_successfully')
          expect([dependency, services[dependency]!.restart ?? 'no']).toEqual([dependency, 'no']);
      }
    }
  });

  it.each(['postgres', 'temporal', 's3', 'api'])('health-checks %s', (name) => {
    const healthcheck = service(name).healthcheck;
    expect(healthcheck?.disable).not.toBe(true);
    expect([healthcheck?.test].flat().join(' ')).toMatch(/\S/);
  });

  it('checks the API through /healthz with node (the slim image has no curl)', () => {
    expect([service('api').healthcheck?.test].flat().join(' ')).toMatch(/node .*fetch\(.*\/healthz/);
  });

  it('starts the application only after migrations, the Temporal namespace and the bucket', () => {
    for (const name of ['api', 'worker']) {
      expect(dependencies(name)).toEqual(
        expect.arrayContaining([
          ['migrate', 'service_completed_successfully'],
          ['temporal-create-namespace', 'service_completed_successfully'],
          ['create-bucket', 'service_completed_successfully'],
        ]),
      );
    }
    expect(commandText('migrate')).toMatch(/npm run migrate/);
    expect(commandText('api')).toMatch(/npm run api/);
    expect(commandText('worker')).toMatch(/npm run worker/);
    expect(dependencies('migrate')).toContainEqual(['postgres', 'service_healthy']);
  });

  it('sets up both Temporal schemas on Postgres before the server starts, with the script the local cluster runs', () => {
    expect(service('temporal-admin-tools').image).toMatch(/^temporalio\/admin-tools:/);
    expect(service('temporal-admin-tools').volumes).toContain('./deploy:/etc/media-generation:ro');
    expect(commandText('temporal-admin-tools')).toBe('sh /etc/media-generation/temporal-setup-schema.sh');
    const setup = readFileSync(path.join(ROOT, 'deploy', 'temporal-setup-schema.sh'), 'utf8');
    expect(setup).toMatch(/--plugin postgres12/);
    expect(setup).toMatch(/setup "\$\{TEMPORAL_DB_NAME:-temporal\}" postgresql\/v12\/temporal/);
    expect(setup).toMatch(/setup "\$\{TEMPORAL_VISIBILITY_DB_NAME:-temporal_visibility\}" postgresql\/v12\/visibility/);
    expect(setup).toMatch(/setup-schema -v 0\.0/);
    expect(containerEnv('temporal-admin-tools')).toMatchObject({ TEMPORAL_DB_HOST: 'postgres' });
    expect(containerEnv('temporal-admin-tools').SQL_PASSWORD).toBe(containerEnv('postgres').POSTGRES_PASSWORD);
    expect(dependencies('temporal')).toContainEqual(['temporal-admin-tools', 'service_completed_successfully']);
  });

  it("runs the Temporal server with deploy/temporal-server.yaml, the local cluster's config", () => {
    expect(service('temporal').volumes).toContain('./deploy:/etc/media-generation:ro');
    expect(commandText('temporal')).toMatch(
      /temporal-server --root \/ --config etc\/media-generation --env temporal-server --allow-no-auth start/,
    );
    const env = containerEnv('temporal');
    expect(env).toMatchObject({ TEMPORAL_DB_HOST: 'postgres', TEMPORAL_BIND_IP: '0.0.0.0' });
    expect(env.TEMPORAL_DB_PASSWORD).toBe(containerEnv('postgres').POSTGRES_PASSWORD);
    // Every variable compose sets is one the config reads.
    const serverConfig = readFileSync(path.join(ROOT, 'deploy', 'temporal-server.yaml'), 'utf8');
    for (const name of Object.keys(env)) expect(serverConfig).toContain(`env "${name}"`);
  });

  it('creates the namespace and registers the MediaJobStatus search attribute (Keyword)', () => {
    const script = commandText('temporal-create-namespace');
    expect(script).toContain('temporal operator namespace create --namespace default --address temporal:7233');
    expect(script).toContain(
      'temporal operator search-attribute create --namespace default --name MediaJobStatus --type Keyword --address temporal:7233',
    );
    expect(dependencies('temporal-create-namespace')).toContainEqual(['temporal', 'service_healthy']);
  });

  it('creates the bucket the application uses, with the credentials the S3 server accepts', () => {
    const script = commandText('create-bucket');
    expect(script).toMatch(/s3api create-bucket --bucket "\$S3_BUCKET_NAME"/);
    expect(script).toMatch(/s3api head-bucket --bucket "\$S3_BUCKET_NAME"/);
    const [app, bucket, s3] = [containerEnv('api'), containerEnv('create-bucket'), containerEnv('s3')];
    expect(bucket).toMatchObject({
      S3_ENDPOINT_URL: app.S3_ENDPOINT_URL,
      S3_BUCKET_NAME: app.S3_BUCKET_NAME,
      AWS_ACCESS_KEY_ID: app.S3_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: app.S3_SECRET_ACCESS_KEY,
    });
    expect(s3).toMatchObject({
      ROOT_ACCESS_KEY: app.S3_ACCESS_KEY_ID,
      ROOT_SECRET_KEY: app.S3_SECRET_ACCESS_KEY,
      VGW_REGION: app.S3_REGION,
    });
    expect(dependencies('create-bucket')).toContainEqual(['s3', 'service_healthy']);
  });
});

// ---- Dockerfile

/** The repository's files that `npm run <script>` runs, and every file they import, relative to ROOT. */
function filesRunBy(scripts: string[]): string[] {
  const packageScripts = (JSON.parse(readRepoFile('package.json')) as { scripts: Record<string, string> }).scripts;
  const entries = scripts.flatMap((name) => packageScripts[name]!.match(/[\w./-]+\.(ts|cjs)\b/g) ?? []);
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const { fileName } of ts.preProcessFile(readRepoFile(file), true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const base = path.posix.join(path.posix.dirname(file), fileName);
      const found = [base, `${base}.ts`, `${base}/index.ts`].find(
        (candidate) => existsSync(path.join(ROOT, candidate)) && statSync(path.join(ROOT, candidate)).isFile(),
      );
      if (found) visit(found);
    }
  };
  for (const entry of entries) visit(path.posix.normalize(entry.replace(/^\.\//, '')));
  return [...seen];
}

describe('Dockerfile', () => {
  // Instructions, with comments dropped and continuation lines joined.
  const instructions = readRepoFile('Dockerfile')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const stages: string[][] = [];
  for (const line of instructions) {
    if (/^FROM\s/i.test(line)) stages.push([]);
    stages.at(-1)?.push(line);
  }
  const runtime = stages.at(-1) ?? [];
  const builders = stages.slice(0, -1).flat();

  it('builds in several stages from a pinned node:20 bookworm-slim image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage[0]).toMatch(/^FROM\s+node:20\.\d+\.\d+-bookworm-slim(\s+AS\s+\S+)?$/i);
  });

  it('type-checks and prebuilds the workflow bundle in a build stage, then ships the bundle', () => {
    expect(builders).toContainEqual(expect.stringMatching(/^RUN .*\bnpm ci\b/));
    expect(builders).toContainEqual(expect.stringMatching(/^RUN .*tsc --noEmit/));
    expect(builders).toContainEqual(expect.stringMatching(/^RUN .*npm run bundle:workflows/));
    expect(runtime).toContainEqual(
      expect.stringMatching(/^COPY --from=\S+ \S*dist\/workflow-bundle\.js \S*dist\/workflow-bundle\.js$/),
    );
  });

  it('installs production dependencies only in the runtime stage', () => {
    expect(runtime).toContainEqual(expect.stringMatching(/^RUN npm ci --omit=dev\b/));
    expect(runtime.filter((line) => /\bnpm (ci|install)\b/.test(line) && !/--omit=dev/.test(line))).toEqual([]);
  });

  it('copies every source the containers run into the runtime stage', () => {
    const copied = runtime
      .filter((line) => /^COPY\s/.test(line) && !/--from=/.test(line))
      .flatMap((line) => line.split(/\s+/).slice(1, -1));
    // What the services' commands run (npm run api, worker, migrate; apikey by exec), and every file
    // those import, named by the top-level folder or file that holds it.
    const needed = new Set(['package.json', 'package-lock.json', 'tsconfig.json']);
    for (const file of filesRunBy(['api', 'worker', 'migrate', 'apikey'])) needed.add(file.split('/')[0]!);
    // The walk follows imports: jobs/ is reached only through them.
    expect(needed).toContain('jobs');
    expect([...needed].filter((entry) => !copied.includes(entry))).toEqual([]);
  });

  it('runs as a non-root user, serving the API by default', () => {
    const users = runtime.filter((line) => /^USER\s/i.test(line));
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^USER\s+(root|0)(:|\s|$)/i);
    expect(runtime.filter((line) => /^CMD\s/.test(line)).at(-1)).toMatch(/^CMD \["npm", "run", "api"\]$/);
  });

  it('keeps local state and secrets out of the build context', () => {
    const ignored = readRepoFile('.dockerignore')
      .split(/\r?\n/)
      .map((line) => line.trim());
    for (const entry of ['node_modules', '.data', '.git', 'dist', '.env']) expect(ignored).toContain(entry);
  });
});

// ---- .env.example

describe('.env.example', () => {
  const lines = readRepoFile('.env.example').split(/\r?\n/);

  it.each(CONFIG_KEYS)('documents %s', (key) => {
    expect(lines.some((line) => new RegExp(`^#?\\s*${key}=`).test(line))).toBe(true);
  });

  it('assigns nothing by default, so copying it to .env for compose changes nothing', () => {
    expect(lines.filter((line) => /^\s*[A-Z_][A-Z0-9_]*=/.test(line))).toEqual([]);
  });
});
