// Lint for everything TypeScript in the repository: the agent, the probers, config, tests and
// benchmarks, with typescript-eslint's type-aware recommended rules (`npm run lint`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'no-duplicate-imports': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // Passing a rejection on unchanged (untilAborted, wrappers) is right even when its type is unknown.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // An async function without await is how an interface method returns a promise (close():
      // Promise<void>), and it turns a throw into a rejection; Promise.resolve() by hand is no better.
      '@typescript-eslint/require-await': 'off',
      // Peer bytes and log lines are cleaned of control characters: matching them is the point.
      'no-control-regex': 'off',
    },
  },
  {
    // Jest's asymmetric matchers (expect.stringMatching, expect.any ...) are typed any: placing one
    // in an expected object is what they are for.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    // The chart tests walk Kubernetes manifests and dashboards parsed from YAML and JSON: loosely
    // typed documents by nature, where a typed model of every object would only restate them.
    files: ['test/helm/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // jest.config.js is plain CommonJS.
    files: ['jest.config.js'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The install step (native/build.js) and the bundling step of the build (scripts/bundle.js) are
    // plain CommonJS for Node: the one runs before any build, the other bundles its output.
    files: ['native/**/*.js', 'scripts/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
