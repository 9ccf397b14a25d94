import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/unit/**/*.test.ts", "tests/integration/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites each start a PGlite instance (WASM, ~1 GiB peak while compiling);
    // two at a time keeps a 2-core machine responsive.
    maxWorkers: 2,
  },
});
