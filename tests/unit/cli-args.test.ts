import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { desiredFromFlags } from "../../src/cli/device-args.js";
import { commandText } from "../../src/cli/format.js";
import { jobFromFlags } from "../../src/cli/job-args.js";
import { KIND_CHOICES, productNamed, productOf, TASK_ACTIONS } from "../../src/cli/kinds.js";
import { parseSelector, ruleFromFlags } from "../../src/cli/rule-args.js";
import { commandFromArgs } from "../../src/cli/task-args.js";
import { PRODUCTS } from "../../src/core/products/index.js";

const noDevice = async (): Promise<string> => {
  throw new Error("no device lookup expected");
};
const caseOf = (init: Parameters<typeof create<typeof CommandSchema>>[1]) => create(CommandSchema, init).kind.case;
/** The kinds whose words have `power`: the shipped ones, and any product added since (a generated one has it). */
const POWER = PRODUCTS.filter((p) => p.words.actions.includes("power")).map((p) => p.kindName);
const split = (words: string) => words.split(" ") as [string, string | undefined];

describe("the CLI's arguments read the product registry", () => {
  it("names each kind by its kind name or an alias, and lists every product's actions", () => {
    for (const p of PRODUCTS) {
      expect(productNamed(p.kindName)).toBe(p);
      for (const a of p.words.aliases) expect(productNamed(a)).toBe(p);
      expect(KIND_CHOICES.split("|")).toContain(p.kindName);
      expect(TASK_ACTIONS).toContain(`${p.label}:`);
      expect(TASK_ACTIONS).toContain(p.words.usage);
    }
    expect(productNamed("coffee")?.kindName).toBe("coffee_machine");
    expect(() => productOf("toaster")).toThrow(`--kind toaster: expected ${KIND_CHOICES}`);
  });

  it("builds a task command with the product's words, and prints it back in them", () => {
    for (const p of PRODUCTS) {
      for (const name of [p.kindName, ...p.words.aliases]) {
        const command = create(CommandSchema, commandFromArgs(name, ...split(p.words.example)));
        expect(command.kind.case).toBe(p.case);
        expect(commandText(command)).toBe(p.words.example);
      }
      expect(() => commandFromArgs(p.kindName, "explode", undefined)).toThrow(`unknown action "explode" for kind ${p.kindName}: expected ${p.words.usage}`);
      expect(() => commandFromArgs(p.kindName, undefined, undefined)).toThrow(`unknown action "" for kind ${p.kindName}`);
    }
    expect(commandText(create(CommandSchema, commandFromArgs("coffee", "brew", "latte:large")))).toBe("brew latte:large");
    expect(commandText(undefined)).toBe("-");
  });

  it("desired flags become <kind>.desired.<field> paths; another kind's flag is refused naming this kind's", () => {
    expect(desiredFromFlags(productOf("led"), { brightness: "40", mode: "breathe" }).paths).toEqual(["led.desired.brightness", "led.desired.mode"]);
    const thermostat = desiredFromFlags(productOf("thermostat"), { setpoint: "21.5", mode: "heat" });
    expect(thermostat.paths).toEqual(["thermostat.desired.setpoint_celsius", "thermostat.desired.mode"]);
    expect(thermostat.kind).toMatchObject({ case: "thermostat", value: { desired: { setpointCelsius: 21.5 } } });
    expect(desiredFromFlags(productOf("coffee"), { power: "on" })).toMatchObject({
      kind: { case: "coffeeMachine", value: { desired: { power: true } } },
      paths: ["coffee_machine.desired.power"],
    });
    expect(() => desiredFromFlags(productOf("coffee"), { brightness: "40" })).toThrow(
      /^--brightness: not a flag of kind coffee_machine, which takes --power on\|off$/,
    );
    expect(() => desiredFromFlags(productOf("thermostat"), { color: "#fff", brightness: "1" })).toThrow(
      /^--color, --brightness: not flags of kind thermostat, which takes --setpoint /,
    );
    expect(() => desiredFromFlags(productOf("led"), { brightness: "bright" })).toThrow("--brightness bright: expected 0-100");
  });

  it("a job whose target names no kind takes the one kind with the command's action; several ask for one", async () => {
    const selector = 'labels.x = "y"';
    expect(caseOf((await jobFromFlags({ selector, command: "brightness 20" }, noDevice)).command)).toBe("led");
    expect(caseOf((await jobFromFlags({ selector, command: "setpoint 21" }, noDevice)).command)).toBe("thermostat");
    expect(caseOf((await jobFromFlags({ selector, command: "brew latte" }, noDevice)).command)).toBe("coffeeMachine");
    await expect(jobFromFlags({ selector, command: "power off" }, noDevice)).rejects.toThrow(
      `"power" is an action of ${POWER.join(" and ")}; the selector names no kind: add kind = "${POWER[0]}" to it, or --kind ${POWER.join("|")}`,
    );
    await expect(jobFromFlags({ selector, command: "explode now" }, noDevice)).rejects.toThrow(`unknown action "explode": expected\n${TASK_ACTIONS}`);
    // --kind (or an alias), the selector's kind term and the first device's kind come first.
    expect(caseOf((await jobFromFlags({ selector, kind: "coffee", command: "power off" }, noDevice)).command)).toBe("coffeeMachine");
    expect(caseOf((await jobFromFlags({ selector: `kind = "coffee_machine" AND ${selector}`, command: "power off" }, noDevice)).command)).toBe("coffeeMachine");
    expect(caseOf((await jobFromFlags({ devices: "a,b", command: "power off" }, async () => "led")).command)).toBe("led");
    await expect(jobFromFlags({ selector, kind: "led", command: "brew latte" }, noDevice)).rejects.toThrow('unknown action "brew" for kind led');
  });

  it("a rule's selector takes a kind name or alias, or the one kind with the command's action", async () => {
    expect(parseSelector("kind=coffee,room=x")).toEqual({ product: productOf("coffee_machine"), labels: { room: "x" } });
    expect(parseSelector("room=x").product).toBeUndefined();
    expect(() => parseSelector("kind=toaster")).toThrow(`kind=toaster is not a kind; expected ${KIND_CHOICES}`);
    const rule = (selector: string, command: string) => ruleFromFlags({ cron: "0 * * * * *", selector, command }, noDevice);
    expect((await rule("room=x", "brightness 80")).target).toEqual({ case: "selector", value: { kind: ProductKind.LED, labels: { room: "x" } } });
    expect((await rule("kind=coffee,room=x", "power on")).target).toEqual({
      case: "selector",
      value: { kind: ProductKind.COFFEE_MACHINE, labels: { room: "x" } },
    });
    await expect(rule("room=x", "power on")).rejects.toThrow(`"power" is an action of ${POWER.join(" and ")}; add kind=${POWER.join("|")} to --selector`);
  });
});
