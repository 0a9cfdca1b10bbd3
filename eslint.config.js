'use strict';
// Type-aware lint for src and test (TypeScript) and for the CommonJS scripts type-checked by
// tsconfig.js.json. Layout is prettier's (`npm run format`); this file holds no formatting rules.
const js = require('@eslint/js');
const simpleImportSort = require('eslint-plugin-simple-import-sort');
const globals = require('globals');
const tseslint = require('typescript-eslint');

module.exports = tseslint.config(
  { ignores: ['dist/', 'coverage/', 'logs/', 'bench/results/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: ['./tsconfig.json', './tsconfig.js.json'],
        tsconfigRootDir: __dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { 'simple-import-sort': simpleImportSort },
    rules: {
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      // `_name` marks a parameter or destructured field left out on purpose, as tsc's noUnusedParameters allows.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // knex's raw(), pg's rows and JSON.parse are `any` in their own types, and the code casts them where it
      // reads them: these rules flag every step of each such read (about 1,400 findings, most in tests and JS).
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // An interface's method may be async with nothing to await (an in-memory store, a fake): it still
      // returns a promise, and a throw in it becomes a rejection as callers expect.
      '@typescript-eslint/require-await': 'off',
      // A `let` that a callback reads before its one assignment (a signal handler set up before the
      // daemon starts) cannot be const: the callback would meet the temporal dead zone.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Prettier wraps code at 140 but leaves a long string or comment as it is: this catches those in src.
    files: ['src/**/*.ts'],
    rules: { 'max-len': ['error', { code: 140, ignoreUrls: true }] },
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
    rules: {
      // CommonJS: require() is how these files import.
      '@typescript-eslint/no-require-imports': 'off',
      // `const crypto = require('node:crypto')` shadows the global of the same module on purpose.
      'no-redeclare': ['error', { builtinGlobals: false }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests load the CommonJS scripts they test (bench/, scripts/), which tsconfig.json does not type.
      '@typescript-eslint/no-require-imports': 'off',
      // Tests strip terminal colour codes (ESC [ ... m) from what a command printed.
      'no-control-regex': 'off',
    },
  },
);
