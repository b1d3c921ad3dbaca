import { defineConfig } from 'vitest/config';

// CI asks for a JSON result file to print the "N passed, N failed" line from. The unit suite's
// second run under Node 24 (npm run test:unit:node24) writes its own file beside it.
const tag = process.env.RB_TEST_RESULTS_TAG;
const resultsFile = process.env.RB_TEST_RESULTS?.replace(/\.json$/, tag ? `-${tag}.json` : '.json');

export default defineConfig({
  test: {
    reporters: resultsFile ? ['default', ['json', { outputFile: resultsFile }]] : ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'src/**/*.test.ts', 'adapters/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/peers/global-setup.ts'],
          // Real servers are shared by all integration files: run files one at a time.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
