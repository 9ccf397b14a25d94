/**
 * The benchmark's Tether in a child process (tether-process.ts): the parent keeps the gRPC
 * callers, so "process CPU per task" is Tether's alone (its database thread included) and the
 * echo baseline's server runs in the same kind of process as Tether's API.
 */
import { fork } from "node:child_process";
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
  const entry = fileURLToPath(new URL("./tether-process.ts", import.meta.url));
  // BENCH_TETHER_CPU_PROF_DIR: a V8 CPU profile of Tether's process, written when it exits.
  const prof = process.env.BENCH_TETHER_CPU_PROF_DIR;
  const execArgv = ["--import", "tsx", ...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [])];
  const child = fork(entry, [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let seq = 0;
  let failure: Error | undefined;
  child.on("message", (m: { id: number; result?: unknown; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(`tether process: ${m.error}`));
    else p?.resolve(m.result);
  });
  child.on("exit", (code, signal) => {
    failure = new Error(`tether process exited (${code ?? signal})`);
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  });
  const call = <R>(method: string, arg?: unknown): Promise<R> => {
    if (failure) return Promise.reject(failure);
    const id = ++seq;
    return new Promise<R>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, method, arg });
    });
  };
  const started = await call<{ apiPort: number; mqttPort: number; certsDir: string }>("start", { env, dir });
  return {
    ...started,
    usage: () => call<TetherUsage>("usage"),
    echoPort: () => call<number>("echo"),
    async stop() {
      if (failure) return;
      try {
        await call("stop");
      } finally {
        child.disconnect();
        if (child.exitCode === null) await new Promise((r) => child.once("exit", r));
      }
    },
  };
}

/** Utilisation between two readings of the child's event loop. */
export const eluBetween = (later: EventLoopUtilization, earlier: EventLoopUtilization) => performance.eventLoopUtilization(later, earlier);
