import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Peer-backed tests start real servers on loopback; run files one at a time on a 2-core box.
    fileParallelism: false,
    // The JSON report (vitest's, plus unhandled errors) is what .ci/run counts; the default reporter is for people.
    reporters: ['default', './test/support/json-reporter.ts'],
    outputFile: { json: 'test-results.json' },
  },
});
