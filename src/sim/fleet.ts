/**
 * A fleet of simulated devices for demos and load tests: many devices of one product on one broker,
 * some of them offline and some tasks failing, in the proportions asked for. It counts executions so a
 * test can prove the end-to-end promise that matters most — no task ever runs twice — under load.
 */
import type { Logger } from "pino";
import { DeviceFailure } from "../device/errors.js";
import type { CommandHandler, TetherDevice } from "../device/tether-device.js";
import { productNamed } from "../core/products/index.js";
import type { SimBehaviour, SimOptions } from "../core/products/sim-behaviour.js";
import { connectSimulator, type SimulatedDevice } from "./simulator.js";

export interface FleetOptions {
  /** `mqtts://host:port` */
  url: string;
  ca: string;
  /** Issues a device certificate (CN = device id), e.g. with `issueDeviceCertificate`. */
  issue: (deviceId: string) => Promise<{ certPem: string; keyPem: string }>;
  /** A product's `kindName` or one of its aliases (see {@link productNamed}). */
  kind: string;
  count: number;
  /** Device ids are `{idPrefix}-{n}`, n from 1. */
  idPrefix: string;
  /** Fraction of devices that never connect (they exist in Tether but stay offline). Default 0. */
  offlineRatio?: number;
  /** Fraction of tasks that fail with a `SIMULATED_FAULT` device error. Default 0. */
  failRatio?: number;
  /** Passed to the product's `sim.create` (the names its `options` list); `seed` is set per device. */
  options?: SimOptions;
  /** Wall-clock ms between two ticks of every device's clock. Default 1000. */
  tickMs?: number;
  /** Publish each tick's readings as telemetry. Default false. */
  telemetry?: boolean;
  log?: Logger;
  /** Devices connecting at the same time; bounds the TLS handshake storm. Default 50. */
  connectConcurrency?: number;
  reconnectPeriodMs?: number;
}

export interface Fleet {
  /** Every device id, offline ones included. */
  deviceIds: string[];
  /** The ids that stay disconnected. */
  offlineIds: string[];
  /** The connected devices, in id order. */
  devices: TetherDevice[];
  /** The simulators behind `devices`, same order, to inspect their state. */
  simulators: SimBehaviour[];
  /** Handler invocations across the fleet. */
  executions(): number;
  /** Task ids executed more than once on some device; at-most-once means this stays 0. */
  duplicates(): number;
  /** Disconnects every device gracefully. */
  stop(): Promise<void>;
}

export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const product = productNamed(opts.kind);
  if (!product) throw new Error(`unknown product kind ${opts.kind}`);
  const prefix = opts.idPrefix.replace(/-+$/, "");
  const deviceIds = Array.from({ length: opts.count }, (_, i) => `${prefix}-${i + 1}`);
  const offline = new Set(deviceIds.filter((_, i) => isSpreadPick(i, opts.offlineRatio ?? 0)));
  const online = deviceIds.filter((id) => !offline.has(id));
  const wrap = faultInjector(opts.failRatio ?? 0);
  const seeds = new Map(deviceIds.map((id, i) => [id, i]));

  const simulated: SimulatedDevice[] = [];
  const devices: TetherDevice[] = [];
  const simulators: SimBehaviour[] = [];
  // One clock for the whole fleet: thousands of per-device timers would cost more than the ticks.
  let last = Date.now();
  const clock = setInterval(() => {
    const now = Date.now();
    for (const d of simulated) d.tick(now - last, opts.telemetry ?? false);
    last = now;
  }, opts.tickMs ?? 1_000);
  clock.unref();
  const stop = async () => {
    clearInterval(clock);
    await Promise.allSettled(devices.map((d) => d.close()));
  };
  const connectOne = async (deviceId: string) => {
    const { certPem, keyPem } = await opts.issue(deviceId);
    const sim = product.sim.create({ ...opts.options, seed: seeds.get(deviceId) });
    return connectSimulator(
      sim,
      { url: opts.url, deviceId, cert: certPem, key: keyPem, ca: opts.ca, log: opts.log, reconnectPeriodMs: opts.reconnectPeriodMs },
      wrap,
    );
  };

  const batch = Math.max(1, opts.connectConcurrency ?? 50);
  try {
    for (let i = 0; i < online.length; i += batch) {
      const connected = await Promise.allSettled(online.slice(i, i + batch).map(connectOne));
      for (const c of connected) {
        if (c.status === "fulfilled") {
          simulated.push(c.value);
          devices.push(c.value.device);
          simulators.push(c.value.sim);
        }
      }
      const failed = connected.find((c) => c.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
  } catch (err) {
    await stop();
    throw err;
  }
  opts.log?.info({ kind: product.kindName, online: devices.length, offline: offline.size }, "simulated fleet connected");

  const counts = () => devices.flatMap((d) => [...d.executions.values()]);
  return {
    deviceIds,
    offlineIds: [...offline],
    devices,
    simulators,
    executions: () => counts().reduce((a, b) => a + b, 0),
    duplicates: () => counts().filter((n) => n > 1).length,
    stop,
  };
}

/**
 * True for about `ratio` of indexes, spread evenly (ratio 0.25 picks every fourth), so offline devices
 * are not all at one end of the id range.
 */
function isSpreadPick(index: number, ratio: number): boolean {
  return Math.floor((index + 1) * ratio) > Math.floor(index * ratio);
}

/**
 * Fails a task when the hash of its id falls under `ratio`. Deterministic per task id, so a redelivered
 * task (were it ever executed again) would fail the same way, and runs are reproducible.
 */
function faultInjector(ratio: number): (handler: CommandHandler) => CommandHandler {
  if (ratio <= 0) return (handler) => handler;
  return (handler) => (command, ctx) => {
    if (fnv1a(ctx.taskId) / 0x1_0000_0000 < ratio) {
      throw new DeviceFailure("SIMULATED_FAULT", "injected by the fleet simulator", { fail_ratio: `${ratio}` });
    }
    return handler(command, ctx);
  };
}

/** 32-bit FNV-1a: a tiny, well-spread string hash. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
