// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

const PROJECT_FOLDERS = [
  'api',
  'workflows',
  'activities',
  'worker',
  'jobs',
  'db',
  'common',
  'scripts',
  'bench',
  'test',
  'console',
];

/** Import paths that reach the top-level `folder` from a file one to three folders deep. */
function fromParentFolders(folder) {
  return [1, 2, 3].flatMap((depth) => ['../'.repeat(depth) + folder, `${'../'.repeat(depth)}${folder}/**`]);
}

/** An ESLint block that lets files in `folder` import only the project folders in `allowed`. */
function layer(folder, allowed, message) {
  const forbidden = PROJECT_FOLDERS.filter((other) => other !== folder && !allowed.includes(other));
  return {
    files: [`${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: forbidden.flatMap(fromParentFolders), message }] }],
    },
  };
}

module.exports = tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', '.data/', 'db/migrations/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: __dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Configuration is parsed once, in common/config.ts.
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read configuration through common/config.ts.' },
      ],
    },
  },
  {
    files: [
      'common/config.ts',
      'scripts/**',
      'test/**',
      'bench/**',
      'drizzle.config.ts',
      'api/main.ts',
      'worker/main.ts',
      'db/migrate.ts',
    ],
    rules: { 'no-restricted-properties': 'off' },
  },
  // Layers (README "Folders"): each folder may import only the folders below it.
  layer('common', [], "common/ is the bottom layer: it imports none of the project's folders."),
  layer('db', ['common'], 'db/ imports only common/.'),
  layer('jobs', ['db', 'common'], 'jobs/ (the job lifecycle) imports db/ and common/.'),
  layer('activities', ['jobs', 'db', 'common'], 'activities/ import jobs/, db/ and common/.'),
  layer('api', ['jobs', 'db', 'common'], 'api/ imports jobs/, db/ and common/, and starts workflows by type name.'),
  layer(
    'worker',
    ['workflows', 'activities', 'jobs', 'db', 'common'],
    'worker/ wires workflows/, activities/, jobs/, db/ and common/; nothing imports api/.',
  ),
  {
    // The console runs in the browser: no Node built-ins, no server code; from common/ only its pure
    // constants (statuses), which the bundle inlines.
    files: ['console/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'os', 'crypto', 'http', 'https', 'net', 'child_process', 'stream'],
              message: 'The console runs in the browser: no Node built-ins.',
            },
            {
              group: PROJECT_FOLDERS.filter((folder) => folder !== 'console' && folder !== 'common').flatMap(
                fromParentFolders,
              ),
              message: 'The console calls the API over HTTP; it imports no server code.',
            },
            {
              group: ['../common/*', '!../common/statuses'],
              message: 'The console imports only common/statuses (pure constants) from common/.',
            },
          ],
        },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Workflow code is replayed in a sandbox: no Node built-ins, no I/O, activities as types only.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Workflows run in a deterministic sandbox: no Node built-ins.' },
            {
              group: [
                'fs',
                'path',
                'os',
                'crypto',
                'http',
                'https',
                'net',
                'child_process',
                'stream',
                'events',
                'util',
              ],
              message: 'Workflows run in a deterministic sandbox: no Node built-ins.',
            },
            {
              group: ['db', 'jobs', 'api', 'worker'].flatMap(fromParentFolders),
              message: 'Workflows import common/ and activities as types only, nothing that does I/O.',
            },
            {
              group: [
                ...fromParentFolders('activities'),
                'pg',
                'drizzle-orm*',
                '@aws-sdk/*',
                'replicate',
                'sharp',
                'pino',
              ],
              allowTypeImports: true,
              message: 'Workflows import activities as types only and nothing that does I/O.',
            },
          ],
        },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
