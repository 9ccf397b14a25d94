/**
 * The benchmark's Tether in a child process (tether-process.ts): the parent keeps the gRPC
 * callers, so "process CPU per task" is Tether's alone (its database thread included) and the
 * echo baseline's server runs in the same kind of process as Tether's API.
 */
import { startChildRpc } from "./child-rpc.js";
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

export interface TetherUsage {
  cpu: NodeJS.CpuUsage;
  elu: EventLoopUtilization;
  statements: number;
  memory: NodeJS.MemoryUsage;
  counters: Record<string, number>;
}

export interface TetherSide {
  apiPort: number;
  mqttPort: number;
  certsDir: string;
  usage(): Promise<TetherUsage>;
  /** Starts (once) the bare echo RPC server beside Tether; its port. */
  echoPort(): Promise<number>;
  stop(): Promise<void>;
}

export async function startTetherProcess(env: Record<string, string>, dir: string): Promise<TetherSide> {
  // BENCH_TETHER_CPU_PROF_DIR: a V8 CPU profile of Tether's process, written when it exits.
  const prof = process.env.BENCH_TETHER_CPU_PROF_DIR;
  const rpc = startChildRpc(
    fileURLToPath(new URL("./tether-process.ts", import.meta.url)),
    "tether process",
    prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [],
  );
  const { call } = rpc;
  const started = await call<{ apiPort: number; mqttPort: number; certsDir: string }>("start", { env, dir });
  return {
    ...started,
    usage: () => call<TetherUsage>("usage"),
    echoPort: () => call<number>("echo"),
    async stop() {
      if (rpc.exited()) return;
      try {
        await call("stop");
      } finally {
        await rpc.end();
      }
    },
  };
}

/** Utilisation between two readings of the child's event loop. */
export const eluBetween = (later: EventLoopUtilization, earlier: EventLoopUtilization) => performance.eventLoopUtilization(later, earlier);
