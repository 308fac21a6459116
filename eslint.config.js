// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

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
              group: [
                '../activities/*',
                '../activities/**',
                '../db/**',
                '../api/**',
                '../worker/**',
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
    files: ['**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
