import { useEffect, useRef, useState } from "react";
import { type ReadableError, readable } from "./errors.js";

/**
 * Calls `load` now and every `everyMs` while mounted (and again when `deps` change), keeping the
 * last good value on screen when a refresh fails. Calls never overlap, and a call still running
 * when the component goes away is aborted.
 */
export function usePolling<T>(load: (signal: AbortSignal) => Promise<T>, everyMs: number, deps: unknown[], merge?: (prev: T | undefined, next: T) => T) {
  const [value, setValue] = useState<T>();
  const [error, setError] = useState<ReadableError>();
  const [version, setVersion] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller names what reloads (deps); load, merge and everyMs are read fresh on each run
  useEffect(() => {
    const ac = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const v = await load(ac.signal);
        if (ac.signal.aborted) return;
        setValue((prev) => (merge ? merge(prev, v) : v));
        setError(undefined);
      } catch (err) {
        if (!ac.signal.aborted) setError(readable(err));
      }
      if (!ac.signal.aborted && everyMs > 0) timer = setTimeout(run, everyMs);
    };
    void run();
    return () => {
      ac.abort();
      clearTimeout(timer);
    };
  }, [...deps, version]);
  return { value, error, reload: () => setVersion((v) => v + 1), setValue };
}

/**
 * Consumes a server stream while mounted, reopening it after a failure with a growing pause (a
 * restarted server or a dropped connection must not leave the page silently stale).
 */
export function useStream<T>(open: (signal: AbortSignal) => AsyncIterable<T>, onMessage: (m: T) => void, deps: unknown[], onOpen?: () => void) {
  const handler = useRef(onMessage);
  handler.current = onMessage;
  const [error, setError] = useState<ReadableError>();
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller names what reopens the stream (deps); messages go to the latest handler through a ref
  useEffect(() => {
    const ac = new AbortController();
    void (async () => {
      let backoff = 500;
      while (!ac.signal.aborted) {
        try {
          onOpen?.();
          for await (const m of open(ac.signal)) {
            setError(undefined);
            backoff = 500;
            handler.current(m);
          }
        } catch (err) {
          if (ac.signal.aborted) return;
          setError(readable(err));
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    })();
    return () => ac.abort();
  }, [...deps]);
  return { error };
}

/** Re-renders every `ms` (for "12 s ago" texts). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
