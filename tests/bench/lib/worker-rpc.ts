/**
 * Request/response calls into a worker thread running a TypeScript module, shared by the benches
 * that move their simulated clients off the main thread (so clients do not compete with Tether).
 */
import { Worker } from "node:worker_threads";

export interface WorkerRpc<H> {
  worker: Worker;
  /** Calls `method` on the worker's host object; rejects once the worker failed or exited. */
  call<R>(method: keyof H, arg?: unknown): Promise<R>;
  /** Whether the worker failed or exited. */
  failed(): boolean;
}

/** Starts `entry` (a .ts module URL) in a worker with the tsx loader registered. */
export function startWorkerRpc<H>(entry: URL, label: string): WorkerRpc<H> {
  // The worker has no tsx loader of its own: register it, then import the TypeScript entry.
  const tsx = import.meta.resolve("tsx/esm/api");
  const worker = new Worker(`import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry.href)});`, { eval: true });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let seq = 0;
  let failure: Error | undefined;
  worker.on("message", (m: { id: number; result?: unknown; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(`${label} worker: ${m.error}`));
    else p?.resolve(m.result);
  });
  const failAll = (err: Error) => {
    failure = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  worker.on("error", (err) => failAll(err));
  worker.on("exit", (code) => failAll(new Error(`${label} worker exited (${code})`)));
  return {
    worker,
    failed: () => failure !== undefined,
    call<R>(method: keyof H, arg?: unknown): Promise<R> {
      if (failure) return Promise.reject(failure);
      const id = ++seq;
      return new Promise<R>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        worker.postMessage({ id, method, arg });
      });
    },
  };
}
