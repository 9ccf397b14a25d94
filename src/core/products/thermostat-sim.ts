/**
 * A simulated room thermostat with plausible physics. The room loses heat toward the outside
 * temperature; heating or cooling moves it toward the setpoint at a fixed rate, switched with a
 * hysteresis band so the equipment does not chatter; humidity wanders within 30–60 % and drops a
 * little while heating (warm air holds more water). `boost` heats at full power for N minutes, then
 * the thermostat returns to its mode. `timeScale` runs simulated time faster than wall time (tests).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { DesiredState } from "../../../gen/tether/device/v1/downlink_pb.js";
import type { Command } from "../../../gen/tether/v1/command_pb.js";
import { ThermostatAction, ThermostatMode, ThermostatModeSchema, ThermostatReportedSchema } from "../../../gen/tether/v1/thermostat_pb.js";
import {
  round,
  SimRejection,
  type SimBehaviour,
  type SimBehaviourFactory,
  type SimEnv,
  type SimOptions,
  type SimReportedInit,
  type SimResultInit,
  type SimSample,
  type SimTaskContext,
} from "./sim-behaviour.js";

export interface ThermostatSimOptions {
  /** Room temperature at start. Default 20 °C. */
  roomCelsius?: number;
  /** What the room drifts toward when nothing runs. Default 12 °C. */
  outsideCelsius?: number;
  /** Default 21 °C. */
  setpointCelsius?: number;
  /** Default THERMOSTAT_MODE_HEAT. */
  mode?: ThermostatMode;
  /** Relative humidity at start. Default 45 %. */
  humidityPercent?: number;
  /** Simulated seconds per wall-clock second. Default 1. */
  timeScale?: number;
  /** Seeds the humidity noise, so runs are reproducible and fleet members differ. */
  seed?: number;
}

/** °C per simulated second. */
export const HEAT_RATE = 0.1;
export const COOL_RATE = 0.08;
/** Fraction of the indoor–outdoor difference lost per simulated second (a time constant of ~1 h). */
const LOSS_PER_S = 1 / 3600;
/** The switching band around the setpoint, so the equipment does not chatter (see `nextAction`). */
export const HYSTERESIS = 0.3;
/** What the simulated hardware accepts. */
const HW_MIN_C = 5;
const HW_MAX_C = 35;
const HUMIDITY_MIN = 30;
const HUMIDITY_MAX = 60;
/** The physics is integrated in steps of at most this many simulated seconds. */
const STEP_S = 1;

export class ThermostatSim implements SimBehaviour {
  temperature: number;
  humidity: number;
  setpoint: number;
  mode: ThermostatMode;
  action = ThermostatAction.IDLE;
  /** Wall-clock ms at which a running boost ends; undefined when none runs. */
  boostEndMs: number | undefined;
  private readonly outside: number;
  private readonly timeScale: number;
  private rng: number;
  private lastReported = "";

  constructor(opts: ThermostatSimOptions = {}) {
    this.temperature = opts.roomCelsius ?? 20;
    this.outside = opts.outsideCelsius ?? 12;
    this.setpoint = opts.setpointCelsius ?? 21;
    this.mode = opts.mode ?? ThermostatMode.HEAT;
    this.humidity = opts.humidityPercent ?? 45;
    this.timeScale = opts.timeScale ?? 1;
    this.rng = (opts.seed ?? 1) >>> 0 || 1;
    this.action = this.nextAction();
    this.lastReported = this.reportKey();
  }

  execute(command: Command, ctx: SimTaskContext): SimResultInit {
    if (command.kind.case !== "thermostat") {
      throw new SimRejection(`a thermostat cannot execute ${command.kind.case ?? "an empty"} command`);
    }
    const action = command.kind.value.action;
    switch (action.case) {
      case "setSetpointCelsius":
        if (!(action.value >= HW_MIN_C && action.value <= HW_MAX_C)) throw new SimRejection(`setpoint must be ${HW_MIN_C}–${HW_MAX_C} °C`);
        this.setpoint = action.value;
        break;
      case "setMode":
        if (action.value === ThermostatMode.UNSPECIFIED || !isKnownMode(action.value)) throw new SimRejection(`unsupported thermostat mode ${action.value}`);
        this.mode = action.value;
        break;
      case "boost":
        if (action.value.minutes < 1) throw new SimRejection("a boost lasts at least one minute");
        this.boostEndMs = ctx.now() + (action.value.minutes * 60_000) / this.timeScale;
        break;
      default:
        throw new SimRejection("empty thermostat command");
    }
    this.action = this.nextAction();
    this.changed(ctx, true);
    return { kind: { case: "thermostat", value: { state: this.snapshot() } } };
  }

  applyDesired(desired: DesiredState, env: SimEnv): void {
    if (desired.kind.case !== "thermostat") return;
    const want = desired.kind.value;
    if (want.setpointCelsius !== undefined) this.setpoint = Math.min(HW_MAX_C, Math.max(HW_MIN_C, want.setpointCelsius));
    if (want.mode !== ThermostatMode.UNSPECIFIED && isKnownMode(want.mode)) this.mode = want.mode;
    this.action = this.nextAction();
    this.changed(env, true);
  }

  reported(): SimReportedInit {
    return { kind: { case: "thermostat", value: this.snapshot() } };
  }

  tick(dtMs: number, env: SimEnv): SimSample[] {
    if (this.boostEndMs !== undefined && env.now() >= this.boostEndMs) this.boostEndMs = undefined;
    let remaining = Math.max(0, (dtMs / 1000) * this.timeScale);
    while (remaining > 0) {
      const s = Math.min(STEP_S, remaining);
      remaining -= s;
      this.action = this.nextAction();
      const power = this.action === ThermostatAction.HEATING ? HEAT_RATE : this.action === ThermostatAction.COOLING ? -COOL_RATE : 0;
      this.temperature += (this.outside - this.temperature) * LOSS_PER_S * s + power * s;
      // A random walk pulled gently back to the middle, drier while the heating runs.
      const drift = (this.random() - 0.5) * 0.1 * s + (45 - this.humidity) * 0.001 * s - (this.action === ThermostatAction.HEATING ? 0.01 * s : 0);
      this.humidity = Math.min(HUMIDITY_MAX, Math.max(HUMIDITY_MIN, this.humidity + drift));
    }
    this.action = this.nextAction();
    this.changed(env, false);
    return [
      { metric: "temperature_celsius", value: round(this.temperature) },
      { metric: "humidity_percent", value: round(this.humidity, 1) },
    ];
  }

  /** The equipment's next state from the current one: the hysteresis needs to know what runs now. */
  private nextAction(): ThermostatAction {
    if (this.boostEndMs !== undefined) return this.temperature < HW_MAX_C ? ThermostatAction.HEATING : ThermostatAction.IDLE;
    const heats = this.mode === ThermostatMode.HEAT || this.mode === ThermostatMode.AUTO;
    const cools = this.mode === ThermostatMode.COOL || this.mode === ThermostatMode.AUTO;
    const t = this.temperature;
    const sp = this.setpoint;
    // Alone, heating (cooling) runs from setpoint ∓ band to setpoint ± band. In AUTO each stops at the
    // setpoint, or a heating overshoot past sp + band would start the cooling at once, and back.
    const stop = this.mode === ThermostatMode.AUTO ? 0 : HYSTERESIS;
    if (heats && (this.action === ThermostatAction.HEATING ? t < sp + stop : t < sp - HYSTERESIS)) return ThermostatAction.HEATING;
    if (cools && (this.action === ThermostatAction.COOLING ? t > sp - stop : t > sp + HYSTERESIS)) return ThermostatAction.COOLING;
    return ThermostatAction.IDLE;
  }

  private snapshot() {
    return create(ThermostatReportedSchema, {
      setpointCelsius: this.setpoint,
      mode: this.mode,
      temperatureCelsius: round(this.temperature, 1),
      humidityPercent: Math.round(this.humidity),
      action: this.action,
      boostEndTime: this.boostEndMs === undefined ? undefined : timestampFromMs(Math.round(this.boostEndMs)),
    });
  }

  /** Reports on a command or desired state always, on a tick only when a reported value moved. */
  private changed(env: SimEnv, always: boolean): void {
    const key = this.reportKey();
    if (!always && key === this.lastReported) return;
    this.lastReported = key;
    env.changed();
  }

  private reportKey(): string {
    return `${this.setpoint}|${this.mode}|${round(this.temperature, 1)}|${Math.round(this.humidity)}|${this.action}|${this.boostEndMs}`;
  }

  /** xorshift32 in [0, 1): deterministic noise without I/O. */
  private random(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng / 0x1_0000_0000;
  }
}

export const thermostatSim: SimBehaviourFactory = {
  options: [
    { name: "roomCelsius", flag: "room-celsius", description: "room temperature at start (default 20)" },
    { name: "outsideCelsius", flag: "outside-celsius", description: "outside temperature the room drifts toward (default 12)" },
    { name: "timeScale", flag: "time-scale", description: "simulated seconds per second (default 1)" },
  ],
  create: (o: SimOptions = {}) =>
    new ThermostatSim({
      roomCelsius: o.roomCelsius,
      outsideCelsius: o.outsideCelsius,
      setpointCelsius: o.setpointCelsius,
      mode: o.mode,
      humidityPercent: o.humidityPercent,
      timeScale: o.timeScale,
      seed: o.seed,
    }),
};

function isKnownMode(mode: number): boolean {
  return ThermostatModeSchema.values.some((v) => v.number === mode);
}
