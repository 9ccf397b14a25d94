/**
 * Child-process entry: serves a {@link DeviceHost} over the IPC channel (see device-side.ts), plus
 * `usage` (this process's event-loop utilisation and CPU), so the benchmark process's CPU is
 * Tether's and its callers', not the simulated fleet's.
 */
import { performance } from "node:perf_hooks";
import { createDeviceHost, type DeviceHost } from "./device-host.js";
import { forceTcpNoDelay } from "./nodelay.js";

interface Call {
  id: number;
  method: keyof DeviceHost | "usage";
  arg: unknown;
}

if (process.env.BENCH_TCP_NODELAY === "1") forceTcpNoDelay();
const host = createDeviceHost();
const usage = async () => ({ elu: performance.eventLoopUtilization(), cpu: process.cpuUsage() });
process.on("message", (call: Call) => {
  const fn = call.method === "usage" ? usage : (host[call.method] as (arg: unknown) => Promise<unknown>);
  fn(call.arg).then(
    (result) => process.send?.({ id: call.id, result }),
    (err: unknown) => process.send?.({ id: call.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
  );
});
// The parent went away (a crashed benchmark): do not linger with 1,000 MQTT clients.
process.on("disconnect", () => process.exit(0));
