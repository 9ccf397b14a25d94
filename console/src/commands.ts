import type { MessageInitShape } from "@bufbuild/protobuf";
import { CupSize, CupSizeSchema, RecipeSchema } from "../../gen/tether/v1/coffee_machine_pb.js";
import type { Command, CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { LedModeSchema } from "../../gen/tether/v1/led_pb.js";
import { colorHex, enumName } from "./format.js";

export type CommandInit = MessageInitShape<typeof CommandSchema>;

/** One line for a command, as the CLI prints it: `brew latte large`, `color #ff0000`. */
export function describeCommand(c: Command | undefined): string {
  if (!c) return "—";
  const k = c.kind;
  if (k.case === "led") {
    const a = k.value.action;
    switch (a.case) {
      case "setPower":
        return `power ${a.value ? "on" : "off"}`;
      case "setColor":
        return `color ${colorHex(a.value)}`;
      case "setBrightness":
        return `brightness ${a.value}`;
      case "setMode":
        return `mode ${enumName(LedModeSchema, a.value).toLowerCase()}`;
    }
  }
  if (k.case === "coffeeMachine") {
    const a = k.value.action;
    switch (a.case) {
      case "setPower":
        return `power ${a.value ? "on" : "off"}`;
      case "brew":
        return `brew ${enumName(RecipeSchema, a.value.recipe).toLowerCase()}${a.value.size !== CupSize.UNSPECIFIED ? ` ${enumName(CupSizeSchema, a.value.size).toLowerCase()}` : ""}`;
      case "clean":
        return "clean";
    }
  }
  return "(empty command)";
}
