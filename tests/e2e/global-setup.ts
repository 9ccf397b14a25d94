import { buildConsole, consoleIsStale } from "../../console/build.js";

/** Builds the web console once for the e2e suite (skipped when the build is current). */
export default async function setup(): Promise<void> {
  if (consoleIsStale()) await buildConsole({ quiet: true });
}
