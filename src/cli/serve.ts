import type { App } from "../app.js";
import { loadConfig } from "../config.js";
import { createLogger } from "../log.js";
import { lockDataDir } from "../ops/data-dir-lock.js";
import { installUncaughtGuard } from "../store/driver-guard.js";

/**
 * `tether serve`: runs the control plane until SIGINT/SIGTERM, then stops gracefully. With the
 * embedded database it first takes the data directory's lock (ops/data-dir-lock.ts), so a second
 * start on the same folder exits before it loads the server or touches a file; with DATABASE_URL
 * the folder holds no shared state and replicas may share it.
 */
export async function serve(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, undefined, config.logFormat);
  installUncaughtGuard(log);
  const lock = config.database.url ? undefined : await lockDataDir(config.dataDir, log);
  // Imported only now: a refused start exits before loading PGlite, the broker and the API.
  const starting: Promise<App> = import("../app.js").then(({ startApp }) => startApp(config, log));
  // Handlers first: a signal during the start (even right after "tether ready" is logged) stops the
  // app once it is up, instead of killing it halfway through writing its database.
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "shutting down");
    starting
      .then((app) => app.stop())
      .then(() => lock?.release())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    await starting;
  } catch (err) {
    await lock?.release();
    throw err;
  }
}
