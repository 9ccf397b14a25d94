#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ (`npm install` builds it: the "prepare" script). In a
// checkout (src/ is there; a published package ships dist/ only), src/ or gen/ edited since that
// build are compiled again first: esbuild does the whole tree in well under a second, so a
// developer's `npm start` runs what they wrote, with one line on stderr saying it rebuilt.
import { existsSync } from "node:fs";

if (existsSync(new URL("../src/main.ts", import.meta.url))) {
  const { rebuildIfStale } = await import("../scripts/build-dist.js");
  await rebuildIfStale();
}
await import("../dist/main.js");
