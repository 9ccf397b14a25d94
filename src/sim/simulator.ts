/**
 * What every product simulator shares: a command handler, a way to apply desired state, and its current
 * reported state — enough for {@link connectSimulator} to put it on the network with the device SDK.
 * Simulators exist to exercise Tether end to end (demos, integration tests, load tests) with devices
 * that behave like the real products, including their failure modes.
 */
import type { Logger } from "pino";
import type { DesiredState } from "../../gen/tether/device/v1/downlink_pb.js";
import {
  connectDevice,
  type CommandHandler,
  type ReportedStateInit,
  type TetherDevice,
} from "../device/tether-device.js";

export interface Simulator {
  readonly handler: CommandHandler;
  onDesiredState(state: DesiredState, device: TetherDevice): void | Promise<void>;
  /** The state to report now (after every change and every reconnect). */
  reported(): ReportedStateInit;
}

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

/**
 * Connects a simulator as a device. It reports its state after every (re)connect, as a real device
 * must: Tether cannot know what changed while the device was offline. `wrap` lets a caller decorate
 * the handler (the fleet injects faults with it).
 */
export function connectSimulator(
  sim: Simulator,
  conn: SimConnectOptions,
  wrap: (handler: CommandHandler) => CommandHandler = (h) => h,
): Promise<TetherDevice> {
  return connectDevice({
    ...conn,
    firmwareVersion: conn.firmwareVersion ?? "sim-1.0.0",
    handler: wrap(sim.handler),
    onDesiredState: (state, device) => sim.onDesiredState(state, device),
    onConnect: (device) => device.reportState(sim.reported()),
  });
}
