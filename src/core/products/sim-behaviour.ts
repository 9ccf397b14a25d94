/**
 * How a product behaves when simulated, as pure logic: state, commands, desired state and physics.
 * A product module declares one {@link SimBehaviourFactory}; the generic adapter in `src/sim/` puts it
 * on the network with the device SDK, drives the clock and publishes telemetry. Keeping the behaviour
 * here (no timers, no I/O) means one adapter serves every product and the physics can be tested with
 * a hand-driven clock.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DesiredState } from "../../../gen/tether/device/v1/downlink_pb.js";
import type { ReportedStateSchema } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { Command, CommandResultSchema } from "../../../gen/tether/v1/command_pb.js";

/** The reported state (the `ReportedState` uplink, without `version`), as an init object. */
export type SimReportedInit = MessageInitShape<typeof ReportedStateSchema>;
/** A successful command result, as an init object. */
export type SimResultInit = MessageInitShape<typeof CommandResultSchema>;

/** One telemetry reading; the adapter stamps the time. */
export interface SimSample {
  readonly metric: string;
  readonly value: number;
}

/** What the adapter gives a behaviour on every call: the clock, and a way to say the state changed. */
export interface SimEnv {
  /** Wall-clock time in ms since the epoch (a test passes its own). */
  now(): number;
  /** The reported state changed: the adapter reports it (fire and forget). */
  changed(): void;
}

/** What a command gets besides the env: progress, and waiting that the adapter times and cancels. */
export interface SimTaskContext extends SimEnv {
  progress(percent: number, message?: string): Promise<void>;
  /** Resolves after `ms` (adapter time); rejects when the task is canceled or the device stops. */
  wait(ms: number): Promise<void>;
}

export interface SimBehaviour {
  /** The state to report now (after every change and every reconnect). */
  reported(): SimReportedInit;
  /** Applies a desired state (only the fields it names); the version check is the SDK's. */
  applyDesired(desired: DesiredState, env: SimEnv): void;
  /** Executes a command; throw {@link SimRejection} or {@link SimFailure} for unhappy endings. */
  execute(command: Command, ctx: SimTaskContext): Promise<SimResultInit> | SimResultInit;
  /** Advances the physics by `dtMs` of wall time and returns this moment's readings. */
  tick(dtMs: number, env: SimEnv): SimSample[];
}

/**
 * Product-specific knobs by name (`brewMs`, `roomCelsius`), so fleets and the CLI can pass them without
 * knowing the product. `seed` (every product) varies waves and noise between devices of one fleet.
 */
export type SimOptions = Readonly<Record<string, number | undefined>>;

/** One option a behaviour understands, for CLI flags and usage text. */
export interface SimOptionInfo {
  /** The key in {@link SimOptions}, e.g. `brewMs`. */
  readonly name: string;
  /** The CLI flag without dashes, e.g. `brew-ms`. */
  readonly flag: string;
  readonly description: string;
}

export interface SimBehaviourFactory {
  readonly options: readonly SimOptionInfo[];
  create(options?: SimOptions): SimBehaviour;
}

/** The simulated device refused without trying; the adapter turns it into a task rejection. */
export class SimRejection extends Error {
  override readonly name = "SimRejection";

  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The simulated device tried and failed, with a machine-readable code; becomes a task failure. */
export class SimFailure extends Error {
  override readonly name = "SimFailure";

  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A slow wave in [-1, 1] with a per-device phase: plausible readings without randomness. */
export function wave(nowMs: number, seed = 0, periodMs = 60_000): number {
  return Math.sin(nowMs / periodMs + seed);
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
