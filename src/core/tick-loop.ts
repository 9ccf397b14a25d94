/**
 * A background loop: runs `step`, waits the delay it returns, runs it again; `wake()` runs it at
 * once. A wake that arrives while a step is running makes the next step immediate (the running
 * step may have read the state before the change). A failing step is reported and retried after
 * `defaultDelayMs`. Shared by the rule scheduler and the job runner.
 */
export function createTickLoop(step: () => Promise<number>, opts: { defaultDelayMs: number; onError: (err: unknown) => void }) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;
  let woken = false;

  async function loop(): Promise<void> {
    timer = undefined;
    let delay = opts.defaultDelayMs;
    try {
      delay = await step();
    } catch (err) {
      opts.onError(err);
    }
    if (woken) {
      woken = false;
      delay = 0;
    }
    if (!stopped) timer = setTimeout(() => (running = loop()), delay);
  }

  return {
    /** Starts the loop (idempotent). */
    start(): void {
      if (!stopped) return;
      stopped = false;
      running = loop();
    },
    /** Runs the step now, or right after the one in progress. */
    wake(): void {
      if (stopped) return;
      if (!timer) {
        woken = true;
        return;
      }
      clearTimeout(timer);
      running = loop();
    },
    /** Stops the loop and waits for a step in progress. */
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
