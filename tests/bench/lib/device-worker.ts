/** Worker-thread entry: serves a {@link DeviceHost} over `postMessage` (see device-side.ts). */
import { parentPort } from "node:worker_threads";
import { createDeviceHost, type DeviceHost } from "./device-host.js";
import { forceTcpNoDelay } from "./nodelay.js";

interface Call {
  id: number;
  method: keyof DeviceHost;
  arg: unknown;
}

if (process.env.BENCH_TCP_NODELAY === "1") forceTcpNoDelay();
const host = createDeviceHost();
const port = parentPort!;
port.on("message", (call: Call) => {
  const fn = host[call.method] as (arg: unknown) => Promise<unknown>;
  fn(call.arg).then(
    (result) => port.postMessage({ id: call.id, result }),
    (err: unknown) => port.postMessage({ id: call.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
  );
});
