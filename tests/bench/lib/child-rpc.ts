/**
 * Request/response calls into a child process running a TypeScript module over its IPC channel,
 * shared by the benches that move Tether or the simulated fleet out of the measuring process (so
 * one process's CPU is one party's). The child answers `{ id, result }` or `{ id, error }`.
 */
import { type ChildProcess, fork } from "node:child_process";

export interface ChildRpc {
  child: ChildProcess;
  /** Calls `method` in the child; rejects once the child failed or exited. */
  call<R>(method: string, arg?: unknown): Promise<R>;
  /** Whether the child exited. */
  exited(): boolean;
  /** Disconnects (the child exits on it) and waits for the exit. */
  end(): Promise<void>;
}

/** Forks `entry` (a .ts module path) with the tsx loader and `extraExecArgv`. */
export function startChildRpc(entry: string, label: string, extraExecArgv: string[] = []): ChildRpc {
  const child = fork(entry, [], { execArgv: ["--import", "tsx", ...extraExecArgv], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let seq = 0;
  let failure: Error | undefined;
  child.on("message", (m: { id: number; result?: unknown; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(`${label}: ${m.error}`));
    else p?.resolve(m.result);
  });
  child.on("exit", (code, signal) => {
    failure = new Error(`${label} exited (${code ?? signal})`);
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  });
  return {
    child,
    exited: () => failure !== undefined,
    call<R>(method: string, arg?: unknown): Promise<R> {
      if (failure) return Promise.reject(failure);
      const id = ++seq;
      return new Promise<R>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, method, arg });
      });
    },
    async end() {
      if (child.connected) child.disconnect();
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once("exit", r));
    },
  };
}
