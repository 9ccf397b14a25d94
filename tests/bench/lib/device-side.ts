/**
 * Runs the benchmark's devices in a child process (default), a worker thread or on the main
 * thread (`BENCH_DEVICE_THREAD=process|worker|main`), behind the same {@link DeviceHost}
 * interface. In a child process the fleet's CPU is not the benchmark process's: "process CPU per
 * task" is then Tether's (and its callers'), as on a deployment where devices are other machines.
 */
import { fileURLToPath } from "node:url";
import { type EventLoopUtilization, performance } from "node:perf_hooks";
import { createDeviceHost, type DeviceHost } from "./device-host.js";
import { startChildRpc } from "./child-rpc.js";
import { startWorkerRpc } from "./worker-rpc.js";

export type DeviceSideMode = "process" | "worker" | "main";

/** The device side's load since a previous reading. */
export interface DeviceUsage {
  elu: EventLoopUtilization;
  /** CPU of the device process (ms, user + system), or undefined when it shares this process. */
  cpuMs?: number;
}

export interface DeviceSide extends DeviceHost {
  mode: DeviceSideMode;
  /** A reading to pass to `usage` later (phase reports measure from it). */
  mark(): Promise<DeviceMark>;
  /** Event-loop utilisation (and CPU, in process mode) of the device side since `from`. */
  usage(from: DeviceMark): Promise<DeviceUsage>;
  /** Stops the devices and ends the worker or child. */
  stop(): Promise<void>;
}

export interface DeviceMark {
  elu: EventLoopUtilization;
  cpu?: NodeJS.CpuUsage;
}

export function startDeviceSide(mode: DeviceSideMode): DeviceSide {
  if (mode === "main") {
    // (BENCH_TCP_NODELAY, if set, was applied to this thread by the caller.)
    const host = createDeviceHost();
    return {
      ...host,
      mode,
      mark: async () => ({ elu: performance.eventLoopUtilization() }),
      usage: async (from) => ({ elu: performance.eventLoopUtilization(from.elu) }),
      stop: host.stop,
    };
  }
  if (mode === "process") return startDeviceProcess();
  const rpc = startWorkerRpc<DeviceHost>(new URL("./device-worker.ts", import.meta.url), "device");
  const { worker, call } = rpc;
  return {
    mode,
    startFleet: (req) => call("startFleet", req),
    startEcho: (req) => call("startEcho", req),
    stats: () => call("stats"),
    mark: async () => ({ elu: worker.performance.eventLoopUtilization() }),
    usage: async (from) => ({ elu: worker.performance.eventLoopUtilization(from.elu) }),
    async stop() {
      try {
        await call("stop");
      } finally {
        await worker.terminate();
      }
    },
  };
}

function startDeviceProcess(): DeviceSide {
  const { call, end } = startChildRpc(fileURLToPath(new URL("./device-process.ts", import.meta.url)), "device process");
  const reading = () => call<{ elu: EventLoopUtilization; cpu: NodeJS.CpuUsage }>("usage");
  return {
    mode: "process",
    startFleet: (req) => call("startFleet", req),
    startEcho: (req) => call("startEcho", req),
    stats: () => call("stats"),
    mark: reading,
    async usage(from) {
      const now = await reading();
      const cpu = from.cpu ? (now.cpu.user - from.cpu.user + now.cpu.system - from.cpu.system) / 1000 : undefined;
      return { elu: performance.eventLoopUtilization(now.elu, from.elu), cpuMs: cpu };
    },
    async stop() {
      try {
        await call("stop");
      } finally {
        await end();
      }
    },
  };
}
