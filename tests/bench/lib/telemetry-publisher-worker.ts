/** Worker-thread entry: serves a {@link PublisherHost} over `postMessage` (see telemetry-publishers.ts). */
import { parentPort } from "node:worker_threads";
import { createPublisherHost, type PublisherHost } from "./telemetry-publishers.js";

interface Call {
  /** 0 = a notification without a reply (progress reports). */
  id: number;
  method: keyof PublisherHost;
  arg: unknown;
}

const host = createPublisherHost();
const port = parentPort!;
port.on("message", (call: Call) => {
  if (call.method === "progress") {
    host.progress(call.arg as number);
    return;
  }
  const fn = host[call.method] as (arg: unknown) => Promise<unknown>;
  fn.call(host, call.arg).then(
    (result) => port.postMessage({ id: call.id, result }),
    (err: unknown) => port.postMessage({ id: call.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
  );
});
