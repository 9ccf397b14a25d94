import { create, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import type { CoffeeMachineCommandSchema } from "../../../gen/tether/v1/coffee_machine_pb.js";
import {
  type CoffeeMachineCommand,
  CoffeeMachineDesiredSchema,
  type CoffeeMachineResult,
  CoffeeMachineStatus,
  CupSize,
  Recipe,
} from "../../../gen/tether/v1/coffee_machine_pb.js";
import { type CommandInit, type CommandWords, enumByShortName, enumShortName, need, parseOnOff, parsePowerFlag } from "./command-words.js";

const USAGE = "power on|off · brew <recipe>[:small|medium|large] · clean";

const command = (action: MessageInitShape<typeof CoffeeMachineCommandSchema>["action"]): CommandInit => ({
  kind: { case: "coffeeMachine", value: { action } },
});

/** The CLI's words for coffee machines. */
export const coffeeMachineWords: CommandWords = {
  aliases: ["coffee"],
  actions: ["power", "brew", "clean"],
  usage: USAGE,
  example: "brew latte:large",
  parse(action, value) {
    switch (action) {
      case "power":
        return command({ case: "setPower", value: parseOnOff(action, need(action, value, USAGE)) });
      case "brew": {
        const [r = "", s = ""] = need(action, value, USAGE).split(":");
        const recipe = enumByShortName(Recipe, r);
        if (!recipe) throw new Error(`brew ${r}: expected espresso, lungo, cappuccino, latte, americano or hot_water`);
        const size = s ? enumByShortName(CupSize, s) : CupSize.UNSPECIFIED;
        if (size === undefined) throw new Error(`size ${s}: expected small, medium or large`);
        return command({ case: "brew", value: { recipe, size } });
      }
      case "clean":
        return command({ case: "clean", value: {} });
    }
    throw new Error(`unknown action "${action}": expected ${USAGE}`);
  },
  describe(message: Message) {
    const { action } = message as CoffeeMachineCommand;
    switch (action.case) {
      case "setPower":
        return `power ${action.value ? "on" : "off"}`;
      case "brew": {
        const { recipe, size } = action.value;
        return `brew ${enumShortName(Recipe, recipe)}${size ? `:${enumShortName(CupSize, size)}` : ""}`;
      }
      case "clean":
        return "clean";
      default:
        return "-";
    }
  },
  describeResult(message: Message) {
    const { dispensedMl, state } = message as CoffeeMachineResult;
    const parts: string[] = [];
    if (dispensedMl) parts.push(`dispensed ${dispensedMl} ml`);
    if (state) {
      if (state.power !== undefined) parts.push(`power ${state.power ? "on" : "off"}`);
      if (state.status) parts.push(`status ${enumShortName(CoffeeMachineStatus, state.status)}`);
      parts.push(`water ${state.waterLevelPercent}%`, `beans ${state.beanLevelPercent}%`);
    }
    return parts.join(", ");
  },
  desiredFlags: [{ name: "power", usage: "on|off" }],
  parseDesired(f) {
    const s = create(CoffeeMachineDesiredSchema);
    const paths: string[] = [];
    if (f.power !== undefined) (s.power = parsePowerFlag(f.power)), paths.push("power");
    return { desired: s, paths };
  },
};
