/**
 * A simulated LED strip: applies commands and desired state instantly (an LED has no slow physics),
 * reports its state after every change, and refuses values the hardware could not show.
 */
import { clone, create, type MessageInitShape } from "@bufbuild/protobuf";
import type { DesiredState } from "../../../gen/tether/device/v1/downlink_pb.js";
import type { Command } from "../../../gen/tether/v1/command_pb.js";
import { ColorSchema, LedMode, LedModeSchema, LedStateSchema, type Color, type LedCommand, type LedState } from "../../../gen/tether/v1/led_pb.js";
import {
  round,
  SimRejection,
  wave,
  type SimBehaviour,
  type SimBehaviourFactory,
  type SimEnv,
  type SimOptions,
  type SimReportedInit,
  type SimResultInit,
  type SimSample,
  type SimTaskContext,
} from "./sim-behaviour.js";

export type LedStateInit = MessageInitShape<typeof LedStateSchema>;

/** Off, solid warm white at full brightness: what a freshly installed bulb does. */
const FACTORY_STATE: LedStateInit = {
  power: false,
  mode: LedMode.SOLID,
  color: { red: 255, green: 214, blue: 170 },
  brightness: 100,
};

export class LedSim implements SimBehaviour {
  /** The state the LED shows now. */
  readonly state: LedState;

  constructor(
    initial: LedStateInit = FACTORY_STATE,
    private readonly seed = 0,
  ) {
    this.state = create(LedStateSchema, initial);
  }

  execute(command: Command, ctx: SimTaskContext): SimResultInit {
    const action = ledCommand(command).action;
    switch (action.case) {
      case "setPower":
        this.state.power = action.value;
        break;
      case "setColor":
        this.state.color = checkedColor(action.value);
        // RAINBOW ignores the colour, so asking for one means "show it": switch to SOLID.
        if (this.state.mode === LedMode.UNSPECIFIED || this.state.mode === LedMode.RAINBOW) this.state.mode = LedMode.SOLID;
        break;
      case "setBrightness":
        this.state.brightness = checkedBrightness(action.value);
        break;
      case "setMode":
        this.state.mode = checkedMode(action.value);
        break;
      default:
        throw new SimRejection("empty LED command");
    }
    ctx.changed();
    return { kind: { case: "led", value: { state: clone(LedStateSchema, this.state) } } };
  }

  /** Applies only the fields the desired state names (every LedState field is optional for this reason). */
  applyDesired(desired: DesiredState, env: SimEnv): void {
    if (desired.kind.case !== "led") return;
    const want = desired.kind.value;
    if (want.power !== undefined) this.state.power = want.power;
    if (want.mode !== LedMode.UNSPECIFIED && isKnownMode(want.mode)) this.state.mode = want.mode;
    if (want.color) this.state.color = clampColor(want.color);
    if (want.brightness !== undefined) this.state.brightness = Math.min(100, want.brightness);
    env.changed();
  }

  reported(): SimReportedInit {
    return { kind: { case: "led", value: clone(LedStateSchema, this.state) } };
  }

  /** Power follows brightness; the driver board runs warmer while lit. */
  tick(_dtMs: number, env: SimEnv): SimSample[] {
    const w = wave(env.now(), this.seed);
    const lit = this.state.power ? (this.state.brightness ?? 100) / 100 : 0;
    return [
      { metric: "power_w", value: round(0.3 + lit * (4 + 2 * w)) },
      { metric: "temperature_celsius", value: round(25 + lit * 6 + w) },
    ];
  }
}

export const ledSim: SimBehaviourFactory = {
  options: [],
  create: (options: SimOptions = {}) => new LedSim(FACTORY_STATE, options.seed ?? 0),
};

function ledCommand(command: Command): LedCommand {
  if (command.kind.case !== "led") {
    throw new SimRejection(`an LED cannot execute ${command.kind.case ?? "an empty"} command`);
  }
  return command.kind.value;
}

function checkedColor(color: Color): Color {
  if ([color.red, color.green, color.blue].some((c) => c > 255)) throw new SimRejection("colour channels must be 0–255");
  return clone(ColorSchema, color);
}

function clampColor(color: Color): Color {
  return create(ColorSchema, { red: Math.min(255, color.red), green: Math.min(255, color.green), blue: Math.min(255, color.blue) });
}

function checkedBrightness(brightness: number): number {
  if (brightness > 100) throw new SimRejection("brightness must be 0–100 percent");
  return brightness;
}

function checkedMode(mode: LedMode): LedMode {
  if (mode === LedMode.UNSPECIFIED || !isKnownMode(mode)) throw new SimRejection(`unsupported LED mode ${mode}`);
  return mode;
}

function isKnownMode(mode: number): boolean {
  return LedModeSchema.values.some((v) => v.number === mode);
}
