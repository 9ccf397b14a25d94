/**
 * Child-process entry: an embedded Tether (startApp) the benchmark drives from its parent, and
 * the bare echo RPC baseline's server beside it, so both are served by a process whose CPU is
 * only the server's: the parent holds the gRPC callers, a child the simulated fleet. Calls over
 * the IPC channel: start, usage, echo, stop (see tether-side.ts).
 */
import { performance } from "node:perf_hooks";
import { startApp, type App } from "../../../src/app.js";
import { loadConfig } from "../../../src/config.js";
import { createLogger } from "../../../src/log.js";
import { ensureDevPki } from "../../../src/pki/dev-pki.js";
import { startEchoServer } from "./baselines.js";
import { forceTcpNoDelay } from "./nodelay.js";

interface Call {
  id: number;
  method: "start" | "usage" | "echo" | "stop";
  arg: unknown;
}

if (process.env.BENCH_TCP_NODELAY === "1") forceTcpNoDelay();
let app: App | undefined;
let echo: { port: number; close(): Promise<void> } | undefined;

const methods: Record<Call["method"], (arg: unknown) => Promise<unknown>> = {
  async start(arg) {
    const { env, dir } = arg as { env: Record<string, string>; dir: string };
    const config = loadConfig(env, dir);
    app = await startApp({ ...config, database: { ...config.database, countStatements: true } }, createLogger(config.logLevel));
    return { apiPort: app.apiPort, mqttPort: app.mqttPort, certsDir: app.certsDir };
  },
  async usage() {
    return {
      cpu: process.cpuUsage(),
      elu: performance.eventLoopUtilization(),
      statements: app?.sqlStatements?.() ?? 0,
      memory: process.memoryUsage(),
      counters: app?.counters.snapshot() ?? {},
    };
  },
  async echo() {
    const pki = await ensureDevPki(app!.certsDir);
    echo ??= await startEchoServer({ key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem });
    return echo.port;
  },
  async stop() {
    await echo?.close();
    await app?.stop();
  },
};

process.on("message", (call: Call) => {
  methods[call.method](call.arg).then(
    (result) => process.send?.({ id: call.id, result }),
    (err: unknown) => process.send?.({ id: call.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
  );
});
process.on("disconnect", () => void methods.stop(undefined).finally(() => process.exit(0)));
