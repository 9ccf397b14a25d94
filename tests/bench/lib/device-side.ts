/**
 * Runs the benchmark's devices in a worker thread (default) or on the main thread
 * (`BENCH_DEVICE_THREAD=main`), behind the same {@link DeviceHost} interface.
 */
import { type EventLoopUtilization, performance } from "node:perf_hooks";
import { createDeviceHost, type DeviceHost } from "./device-host.js";
import { startWorkerRpc } from "./worker-rpc.js";

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
  const rpc = startWorkerRpc<DeviceHost>(new URL("./device-worker.ts", import.meta.url), "device");
  const { worker, call } = rpc;
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
