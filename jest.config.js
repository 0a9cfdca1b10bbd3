/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Integration tests share one Postgres server and start child processes: run files one at a time
  // so a kill test's timing is not skewed by another file's load.
  maxWorkers: 1,
  testTimeout: 60_000,
};
