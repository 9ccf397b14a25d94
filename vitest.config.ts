import { defineConfig } from "vitest/config";

/**
 * `npm test` runs unit and integration tests: they need nothing but Node (the integration suites
 * start the embedded stack). `npm run test:services` runs against real PostgreSQL, RabbitMQ and
 * MQTT brokers on their standard local ports.
 */
export default defineConfig({
  test: {
    include: process.env.TETHER_TEST_SUITE === "services" ? ["tests/services/**/*.test.ts"] : ["tests/unit/**/*.test.ts", "tests/integration/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites each start a PGlite instance (WASM, memory-hungry while compiling);
    // two at a time keeps a 2-core machine responsive.
    maxWorkers: 2,
  },
});
