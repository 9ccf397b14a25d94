/**
 * A simulated LED strip: applies commands and desired state instantly (an LED has no slow physics),
 * reports its state after every change, and refuses values the hardware could not show.
 */
import { clone, create, type MessageInitShape } from "@bufbuild/protobuf";
import type { DesiredState } from "../../gen/tether/device/v1/downlink_pb.js";
import type { Command } from "../../gen/tether/v1/command_pb.js";
import {
  ColorSchema,
  LedMode,
  LedModeSchema,
  LedStateSchema,
  type Color,
  type LedCommand,
  type LedState,
} from "../../gen/tether/v1/led_pb.js";
import { DeviceRejection } from "../device/errors.js";
import type { CommandHandler, ReportedStateInit, TetherDevice } from "../device/tether-device.js";
import { connectSimulator, type SimConnectOptions, type Simulator } from "./simulator.js";

export type LedStateInit = MessageInitShape<typeof LedStateSchema>;

/** Off, solid warm white at full brightness: what a freshly installed bulb does. */
const FACTORY_STATE: LedStateInit = {
  power: false,
  mode: LedMode.SOLID,
  color: { red: 255, green: 214, blue: 170 },
  brightness: 100,
};

export class LedSimulator implements Simulator {
  /** The state the LED shows now. */
  readonly state: LedState;

  constructor(initial: LedStateInit = FACTORY_STATE) {
    this.state = create(LedStateSchema, initial);
  }

  readonly handler: CommandHandler = (command, ctx) => {
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
        throw new DeviceRejection("empty LED command");
    }
    this.report(ctx.device);
    return { kind: { case: "led", value: { state: clone(LedStateSchema, this.state) } } };
  };

  /** Applies only the fields the desired state names (every LedState field is optional for this reason). */
  onDesiredState(desired: DesiredState, device: TetherDevice): void {
    if (desired.kind.case !== "led") return;
    const want = desired.kind.value;
    if (want.power !== undefined) this.state.power = want.power;
    if (want.mode !== LedMode.UNSPECIFIED && isKnownMode(want.mode)) this.state.mode = want.mode;
    if (want.color) this.state.color = clampColor(want.color);
    if (want.brightness !== undefined) this.state.brightness = Math.min(100, want.brightness);
    this.report(device);
  }

  reported(): ReportedStateInit {
    return { kind: { case: "led", value: clone(LedStateSchema, this.state) } };
  }

  /** Fire and forget: the LED has already changed; the report reaches Tether when the link allows. */
  private report(device: TetherDevice): void {
    void device.reportState(this.reported()).catch(() => undefined);
  }
}

/** Connects a simulated LED. */
export async function startLedSim(
  conn: SimConnectOptions & { initial?: LedStateInit },
): Promise<{ sim: LedSimulator; device: TetherDevice }> {
  const sim = new LedSimulator(conn.initial);
  return { sim, device: await connectSimulator(sim, conn) };
}

function ledCommand(command: Command): LedCommand {
  if (command.kind.case !== "led") {
    throw new DeviceRejection(`an LED cannot execute ${command.kind.case ?? "an empty"} command`);
  }
  return command.kind.value;
}

function checkedColor(color: Color): Color {
  if ([color.red, color.green, color.blue].some((c) => c > 255)) throw new DeviceRejection("colour channels must be 0–255");
  return clone(ColorSchema, color);
}

function clampColor(color: Color): Color {
  return create(ColorSchema, { red: Math.min(255, color.red), green: Math.min(255, color.green), blue: Math.min(255, color.blue) });
}

function checkedBrightness(brightness: number): number {
  if (brightness > 100) throw new DeviceRejection("brightness must be 0–100 percent");
  return brightness;
}

function checkedMode(mode: LedMode): LedMode {
  if (mode === LedMode.UNSPECIFIED || !isKnownMode(mode)) throw new DeviceRejection(`unsupported LED mode ${mode}`);
  return mode;
}

function isKnownMode(mode: number): boolean {
  return LedModeSchema.values.some((v) => v.number === mode);
}
