import type { Logger } from "pino";
import { withTimeout } from "../core/timeout.js";

/** grpc.health.v1 service names of Tether's dependencies; "" (the whole server) is all of them. */
export const HEALTH = {
  database: "tether.database",
  broker: "tether.broker",
  /** Registered by the event bus (RabbitMQ) when one is configured. */
  eventBus: "tether.event_bus",
} as const;

/** Answers whether a dependency works right now; throwing or timing out counts as down. */
export type Probe = () => Promise<boolean> | boolean;

export interface DependencyMonitor {
  /** Adds a dependency; its status is NOT_SERVING until its first probe succeeds. */
  add(name: string, probe: Probe): void;
  /** Probes everything now (also runs every `intervalMs` once started). */
  check(): Promise<void>;
  start(): void;
  stop(): void;
  /** The last known state of each dependency. */
  statuses(): Record<string, boolean>;
  /** All dependencies up: readiness. */
  ready(): boolean;
}

/**
 * Probes each dependency on a timer and publishes the result to the health service (one
 * grpc.health.v1 service name per dependency, and "" for all of them), which is what Kubernetes
 * probes, load balancers and /readyz read. A probe that takes longer than `timeoutMs` is down:
 * an unreachable database usually hangs rather than fails.
 */
export function createDependencyMonitor(opts: {
  // The health service's settable statuses, spelled out so ops does not import api.
  setStatus: (service: string, status: "SERVING" | "NOT_SERVING") => void;
  intervalMs: number;
  timeoutMs?: number;
  log: Logger;
}): DependencyMonitor {
  const probes = new Map<string, Probe>();
  const up = new Map<string, boolean>();
  const timeoutMs = opts.timeoutMs ?? Math.max(1000, Math.min(opts.intervalMs, 5000));
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const publish = () => opts.setStatus("", [...up.values()].every(Boolean) ? "SERVING" : "NOT_SERVING");
  async function probeOne(name: string, probe: Probe): Promise<void> {
    let ok: boolean;
    let reason: unknown;
    try {
      ok = await withTimeout(Promise.resolve(probe()), timeoutMs);
    } catch (err) {
      ok = false;
      reason = err;
    }
    if (up.get(name) !== ok) {
      if (ok) opts.log.info({ dependency: name }, "dependency up");
      else opts.log.warn({ dependency: name, err: reason instanceof Error ? reason.message : reason }, "dependency down");
    }
    up.set(name, ok);
    opts.setStatus(name, ok ? "SERVING" : "NOT_SERVING");
  }
  const check = () =>
    (running ??= Promise.all([...probes].map(([n, p]) => probeOne(n, p)))
      .then(publish)
      .finally(() => (running = undefined)));

  return {
    add(name, probe) {
      probes.set(name, probe);
      up.set(name, false);
      opts.setStatus(name, "NOT_SERVING");
      publish();
    },
    check,
    start() {
      timer ??= setInterval(() => void check(), opts.intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
    statuses: () => Object.fromEntries(up),
    ready: () => [...up.values()].every(Boolean),
  };
}
