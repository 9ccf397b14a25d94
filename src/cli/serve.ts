import { startApp } from "../app.js";
import { loadConfig } from "../config.js";
import { createLogger } from "../log.js";
import { installUncaughtGuard } from "../store/driver-guard.js";

/** `tether serve`: runs the control plane until SIGINT/SIGTERM, then stops gracefully. */
export async function serve(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, undefined, config.logFormat);
  installUncaughtGuard(log);
  const app = await startApp(config, log);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "shutting down");
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
