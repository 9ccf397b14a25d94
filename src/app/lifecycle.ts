import type { Logger } from "../log.js";

/** One stop step: registered when its part has started, so steps stand in start order. */
export interface StopStep {
  /** Logged with the step's duration ("stopped", or why it was cut off). */
  name: string;
  stop: () => Promise<void> | void;
  /** The message logged when the step finished in time. @default "stopped" */
  done?: string;
  /** How long the step may take before it is abandoned and the next one runs. @default the lifecycle's default */
  timeoutMs?: number;
}

export interface AppLifecycle {
  /** Registers a started part's stop step. */
  add(step: StopStep): void;
  /**
   * Takes a step's place in the order now and names its action later: for a part that must stop
   * after one built after it (the AMQP uplink intake is built from the bridge, but closes after
   * it). A slot never filled stops as a no-op.
   */
  reserve(name: string, timeoutMs?: number): (stop: () => Promise<void> | void) => void;
  /** Runs every step in reverse start order, once; later calls return the same promise. */
  stop(): Promise<void>;
}

/**
 * The composition root's start/stop bookkeeping. Each step is bounded: a component that hangs on
 * close (a broker that never answers) must not keep the rest — the database flush above all —
 * from stopping. A failing or timed-out step is logged and the next one runs.
 */
export function createAppLifecycle(log: Logger, defaultTimeoutMs = 15_000): AppLifecycle {
  const steps: StopStep[] = [];
  let stopping: Promise<void> | undefined;

  async function runStep(step: StopStep): Promise<void> {
    const bound = step.timeoutMs ?? defaultTimeoutMs;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), bound)));
    try {
      const outcome = await Promise.race([Promise.resolve().then(step.stop), timedOut]);
      const ms = Math.round(performance.now() - started);
      if (outcome === "timeout") log.error({ step: step.name, ms, timeoutMs: bound }, "shutdown step timed out; continuing");
      else log.info({ step: step.name, ms }, step.done ?? "stopped");
    } catch (err) {
      log.error({ err, step: step.name, ms: Math.round(performance.now() - started) }, "error during shutdown");
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    add(step) {
      if (stopping) throw new Error(`cannot add stop step "${step.name}": the app is stopping`);
      steps.push(step);
    },
    reserve(name, timeoutMs) {
      let action: () => Promise<void> | void = () => {};
      steps.push({ name, timeoutMs, stop: () => action() });
      return (stop) => void (action = stop);
    },
    stop() {
      return (stopping ??= (async () => {
        for (const step of [...steps].reverse()) await runStep(step);
      })());
    },
  };
}
