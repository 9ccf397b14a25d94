/**
 * Runs the benchmark's devices in a worker thread (default) or on the main thread
 * (`BENCH_DEVICE_THREAD=main`), behind the same {@link DeviceHost} interface.
 */
import { type EventLoopUtilization, performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { createDeviceHost, type DeviceHost } from "./device-host.js";

export interface DeviceSide extends DeviceHost {
  mode: "worker" | "main";
  /** Event-loop utilisation of the device thread since `from` (a previous reading), for phase reports. */
  elu(from?: EventLoopUtilization): EventLoopUtilization;
  /** Stops the devices and ends the worker. */
  stop(): Promise<void>;
}

export function startDeviceSide(mode: "worker" | "main"): DeviceSide {
  if (mode === "main") {
    // (BENCH_TCP_NODELAY, if set, was applied to this thread by the caller.)
    const host = createDeviceHost();
    return { ...host, mode, elu: (from) => performance.eventLoopUtilization(from) };
  }
  // The worker has no tsx loader of its own: register it, then import the TypeScript entry.
  const tsx = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./device-worker.ts", import.meta.url).href;
  const worker = new Worker(`import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`, { eval: true });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let seq = 0;
  let failure: Error | undefined;
  worker.on("message", (m: { id: number; result?: unknown; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(`device worker: ${m.error}`));
    else p?.resolve(m.result);
  });
  const failAll = (err: Error) => {
    failure = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  worker.on("error", (err) => failAll(err));
  worker.on("exit", (code) => failAll(new Error(`device worker exited (${code})`)));
  const call = <R>(method: keyof DeviceHost, arg?: unknown): Promise<R> => {
    if (failure) return Promise.reject(failure);
    const id = ++seq;
    return new Promise<R>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, method, arg });
    });
  };
  return {
    mode,
    startFleet: (req) => call("startFleet", req),
    startEcho: (req) => call("startEcho", req),
    stats: () => call("stats"),
    elu: (from) => worker.performance.eventLoopUtilization(from),
    async stop() {
      try {
        await call("stop");
      } finally {
        await worker.terminate();
      }
    },
  };
}
