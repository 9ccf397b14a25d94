import { defineConfig } from "vitest/config";

/**
 * `npm test` runs unit and integration tests: they need nothing but Node (the integration suites
 * start the embedded stack). `npm run test:services` runs against real PostgreSQL, RabbitMQ and
 * MQTT brokers on their standard local ports. `npm run test:e2e` drives the web console in
 * Chromium (`/usr/bin/chromium`, or CHROMIUM_PATH) against a real Tether with simulated devices.
 * `npm run test:faults` kills, cuts and abuses real `tether serve` processes (tests/faults/).
 */
const suite = process.env.TETHER_TEST_SUITE;
const INCLUDE: Record<string, string[]> = {
  services: ["tests/services/**/*.test.ts"],
  e2e: ["tests/e2e/**/*.test.ts"],
  faults: ["tests/faults/**/*.test.ts"],
};

export default defineConfig({
  test: {
    // Projects' include lists extend this one, so it is set only for the other suites.
    include: suite ? INCLUDE[suite] : [],
    // tests/unit opens no sockets (tests/helpers/no-sockets.ts refuses connect and listen there):
    // fast tests of core logic over PGlite, an in-memory feed and a fake clock.
    projects: suite
      ? undefined
      : [
          { extends: true, test: { name: "unit", include: ["tests/unit/**/*.test.ts"], setupFiles: ["tests/helpers/no-sockets.ts"] } },
          { extends: true, test: { name: "integration", include: ["tests/integration/**/*.test.ts"] } },
        ],
    // dist/ is compiled once if src/ changed (tests that spawn bin/tether.js run it); the e2e suite
    // also builds the console once, before any browser starts.
    globalSetup: ["tests/helpers/fresh-dist.ts", ...(suite === "e2e" ? ["tests/e2e/global-setup.ts"] : [])],
    testTimeout: suite === "e2e" ? 120_000 : suite === "faults" ? 300_000 : 30_000,
    hookTimeout: suite === "e2e" || suite === "faults" ? 120_000 : 60_000,
    // Integration suites each start a PGlite instance (WASM, memory-hungry while compiling);
    // two at a time keeps a 2-core machine responsive. A browser suite runs alone.
    // Fault scenarios each run several servers and measure recovery: one file at a time.
    maxWorkers: suite === "e2e" || suite === "faults" ? 1 : 2,
  },
});
