/**
 * Puts any product's simulated behaviour (`Product.sim`, pure logic in `src/core/products/`) on the
 * network with the device SDK: it turns commands into tasks with real waiting and cancellation,
 * reports state whenever the behaviour says it changed and after every reconnect, and drives the
 * behaviour's clock, publishing its readings as telemetry when asked. It names no product.
 * Simulators exist to exercise Tether end to end (demos, integration tests, load tests) with devices
 * that behave like the real products, including their failure modes.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { SimFailure, SimRejection, type SimBehaviour, type SimEnv, type SimSample } from "../core/products/sim-behaviour.js";
import { DeviceFailure, DeviceRejection } from "../device/errors.js";
import { connectDevice, type CommandHandler, type TetherDevice } from "../device/tether-device.js";

/** Where and as whom a simulated device connects. */
export interface SimConnectOptions {
  url: string;
  deviceId: string;
  cert: string;
  key: string;
  ca: string;
  log?: Logger;
  firmwareVersion?: string;
  reconnectPeriodMs?: number;
}

/** How the adapter drives a behaviour's clock. */
export interface SimClockOptions {
  /** Wall-clock ms between two ticks. Default 1000. */
  tickMs?: number;
  /** Publish each tick's readings (plus a link `signal_strength`) as telemetry. Default false. */
  telemetry?: boolean;
}

/** A behaviour bound to the device that carries it: what the fleet and the CLI tick. */
export interface SimulatedDevice<B extends SimBehaviour = SimBehaviour> {
  readonly sim: B;
  readonly device: TetherDevice;
  /** Advances the behaviour by `dtMs` and, if `telemetry`, sends its readings. */
  tick(dtMs: number, telemetry: boolean): void;
}

/**
 * Connects a behaviour as a device. It reports its state after every (re)connect, as a real device
 * must: Tether cannot know what changed while the device was offline. `wrap` lets a caller decorate
 * the handler (the fleet injects faults with it). Nothing ticks: see {@link startSimulator}.
 */
export async function connectSimulator<B extends SimBehaviour>(
  sim: B,
  conn: SimConnectOptions,
  wrap: (handler: CommandHandler) => CommandHandler = (h) => h,
): Promise<SimulatedDevice<B>> {
  let device: TetherDevice | undefined;
  const env: SimEnv = {
    now: () => Date.now(),
    // Fire and forget: the device has already changed; the report reaches Tether when the link allows.
    changed: () => void device?.reportState(sim.reported()).catch(() => undefined),
  };
  const handler: CommandHandler = async (command, ctx) => {
    try {
      return await sim.execute(command, {
        ...env,
        progress: (percent, message) => ctx.progress(percent, message),
        wait: (ms) => sleep(ms, undefined, { signal: ctx.signal }),
      });
    } catch (err) {
      throw toDeviceError(err);
    }
  };
  device = await connectDevice({
    ...conn,
    firmwareVersion: conn.firmwareVersion ?? "sim-1.0.0",
    handler: wrap(handler),
    onDesiredState: (state) => sim.applyDesired(state, env),
    onConnect: (d) => d.reportState(sim.reported()),
  });
  const connected = device;
  return {
    sim,
    device: connected,
    tick(dtMs, telemetry) {
      const samples = sim.tick(dtMs, env);
      if (telemetry && connected.connected) void connected.sendTelemetry(withLinkMetrics(samples, connected.deviceId)).catch(() => undefined);
    },
  };
}

/**
 * Connects one simulated device and ticks it every `tickMs` until its device is closed: what a test
 * or a single demo device wants.
 */
export async function startSimulator<B extends SimBehaviour>(sim: B, conn: SimConnectOptions & SimClockOptions): Promise<{ sim: B; device: TetherDevice }> {
  const simulated = await connectSimulator(sim, conn);
  const { device } = simulated;
  const tickMs = conn.tickMs ?? 1_000;
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    simulated.tick(now - last, conn.telemetry ?? false);
    last = now;
  }, tickMs);
  timer.unref();
  // The SDK's device has no "closed" event; stopping the clock with close keeps callers unchanged.
  const close = device.close.bind(device);
  device.close = (opts) => {
    clearInterval(timer);
    return close(opts);
  };
  return { sim, device };
}

/** A behaviour's refusal or failure as the SDK's errors; anything else (a cancel's abort) passes through. */
function toDeviceError(err: unknown): unknown {
  if (err instanceof SimRejection) return new DeviceRejection(err.reason);
  if (err instanceof SimFailure) return new DeviceFailure(err.code, err.message, err.details);
  return err;
}

/** Adds the radio's signal strength, which every device sends whatever its product. */
function withLinkMetrics(samples: SimSample[], deviceId: string) {
  const phase = [...deviceId].reduce((a, c) => a + c.charCodeAt(0), 0);
  const signal = Math.round(-60 + 10 * Math.sin(Date.now() / 60_000 + phase));
  return [...samples, { metric: "signal_strength", value: signal }];
}
