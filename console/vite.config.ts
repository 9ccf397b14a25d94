import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

/**
 * The web console: `console/` is the Vite root, the build lands in `console/dist` (served by Tether
 * on its API port). It imports the generated contract from `../gen`, the same code the server and
 * the CLI use. The console calls the API on its own origin, so it is meant to be served by Tether.
 */
export default defineConfig({
  root,
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
    chunkSizeWarningLimit: 1024,
  },
});
