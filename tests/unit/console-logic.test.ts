import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { type Device, DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { mergeDeviceSnapshot } from "../../console/src/device-merge.js";
import { buildFilter } from "../../console/src/filter.js";
import { fieldsUnder, readable } from "../../console/src/errors.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { loadConfig } from "../../src/config.js";
import { parseDeviceFilter } from "../../src/core/devices/device-filter.js";
import { CoffeeMachineResultSchema, CupSize, Recipe } from "../../gen/tether/v1/coffee_machine_pb.js";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { ColorSchema } from "../../gen/tether/v1/led_pb.js";
import { ThermostatMode, ThermostatResultSchema } from "../../gen/tether/v1/thermostat_pb.js";
import { coffeeMachineCommands } from "../../console/src/products/coffee-machine-commands.js";
import { colorHex, hexColor, ledCommands } from "../../console/src/products/led-commands.js";
import { thermostatCommands } from "../../console/src/products/thermostat-commands.js";
import { Violations } from "../../src/core/errors.js";
import { coffeeMachineProduct } from "../../src/core/products/coffee-machine.js";
import { ledProduct } from "../../src/core/products/led.js";
import { thermostatProduct } from "../../src/core/products/thermostat.js";

describe("web console logic", () => {
  it("builds ListDevices filters that the server's parser accepts", () => {
    const f = buildFilter("coffee_machine", 'room=kitchen, floor, note=say "hi"', "true");
    expect(f).toBe('kind = "coffee_machine" AND labels.room = "kitchen" AND labels.floor:* AND labels.note = "say \\"hi\\"" AND online = true');
    expect(() => parseDeviceFilter(f)).not.toThrow();
    expect(buildFilter("", "", "")).toBe("");
  });

  it("turns a gRPC status into a sentence, a code and per-field reasons", () => {
    const err = new ConnectError("rule.cron.expression: invalid cron expression", Code.InvalidArgument, undefined, [
      {
        desc: BadRequestSchema,
        value: create(BadRequestSchema, {
          fieldViolations: [
            { field: "rule.cron.expression", description: "invalid cron expression" },
            { field: "rule_id", description: "must be lowercase" },
          ],
        }),
      },
    ]);
    const r = readable(err);
    expect(r.code).toBe("INVALID_ARGUMENT");
    expect(r.message).toBe("rule.cron.expression: invalid cron expression");
    expect(fieldsUnder(r.fields, "rule.cron")).toEqual(["expression: invalid cron expression"]);
    expect(fieldsUnder(r.fields, "rule_id")).toEqual(["must be lowercase"]);
    expect(readable(new ConnectError("devices/x", Code.NotFound)).message).toBe("Not found: devices/x");
    expect(loadConfig({}).consoleDir.endsWith("console/dist")).toBe(true);
  });
});

describe("mergeDeviceSnapshot", () => {
  const at = (ms: number) => timestampFromMs(ms);
  const led = (desired: number, reported: number, seenMs: number) =>
    create(DeviceSchema, {
      name: "devices/l",
      uid: "u-1",
      connectivity: { online: true, lastSeenTime: at(seenMs) },
      kind: { case: "led", value: { desired: { brightness: desired }, reported: { brightness: reported } } },
    });
  const brightness = (d: Device) => (d.kind.case === "led" ? [d.kind.value.desired?.brightness, d.kind.value.reported?.brightness] : []);

  it("keeps a newer report when an older UpdateDevice answer arrives after a WatchDevices change", () => {
    const fromWatch = led(80, 80, 2000); // the LED already reported the new value
    const fromUpdate = led(80, 10, 1000); // the answer to the update that asked for it
    expect(brightness(mergeDeviceSnapshot(fromWatch, fromUpdate))).toEqual([80, 80]);
    expect(timestampMs(mergeDeviceSnapshot(fromWatch, fromUpdate).connectivity!.lastSeenTime!)).toBe(2000);
  });

  it("takes everything from the newer snapshot, and ignores a snapshot of another device (re-created)", () => {
    expect(brightness(mergeDeviceSnapshot(led(10, 10, 1000), led(80, 80, 2000)))).toEqual([80, 80]);
    const recreated = create(DeviceSchema, { ...led(5, 5, 500), uid: "u-2" });
    expect(brightness(mergeDeviceSnapshot(led(80, 80, 2000), recreated))).toEqual([5, 5]);
    expect(brightness(mergeDeviceSnapshot(undefined, led(1, 2, 3)))).toEqual([1, 2]);
  });
});

describe("console product command forms", () => {
  const forms = [
    ["led", ledCommands, ledProduct],
    ["coffeeMachine", coffeeMachineCommands, coffeeMachineProduct],
    ["thermostat", thermostatCommands, thermostatProduct],
  ] as const;

  it.each(forms)("%s: every action with default fields builds a command of that product which the server accepts", (kase, commands, core) => {
    for (const a of commands.actions) {
      const c = create(CommandSchema, commands.buildCommand({ action: a.name, values: { ...commands.draftDefaults } }));
      expect(c.kind.case).toBe(kase);
      const v = new Violations();
      core.validateCommand(c.kind.value!, "command", v);
      expect(v.list, `${kase} ${a.name}`).toEqual([]);
      // Every field the form shows has a default, so a fresh form never sends undefined.
      for (const f of a.fields) expect(commands.draftDefaults[f.name], `${a.name}.${f.name}`).toBeDefined();
    }
  });

  const describe_ = (kase: "led" | "coffeeMachine" | "thermostat", c: ReturnType<typeof create<typeof CommandSchema>>) => {
    const commands = forms.find(([k]) => k === kase)![1] as { describeCommand(v: unknown): string };
    return commands.describeCommand(c.kind.value);
  };

  it("describes built commands as the CLI prints them", () => {
    const build = (kase: (typeof forms)[number][0], action: string, values: Record<string, string | number | boolean>) => {
      const commands = forms.find(([k]) => k === kase)![1];
      return describe_(kase, create(CommandSchema, commands.buildCommand({ action, values: { ...commands.draftDefaults, ...values } })));
    };
    expect(build("led", "color", { color: "#ff8800" })).toBe("color #ff8800");
    expect(build("led", "brightness", { brightness: 30 })).toBe("brightness 30");
    expect(build("led", "power", { power: false })).toBe("power off");
    expect(build("coffeeMachine", "brew", { recipe: Recipe.LATTE, size: CupSize.LARGE })).toBe("brew latte:large");
    expect(build("coffeeMachine", "brew", { recipe: Recipe.LUNGO, size: CupSize.UNSPECIFIED })).toBe("brew lungo");
    expect(build("coffeeMachine", "clean", {})).toBe("clean");
    expect(build("thermostat", "setpoint", { setpoint: 21.5 })).toBe("setpoint 21.5");
    expect(build("thermostat", "mode", { mode: ThermostatMode.COOL })).toBe("mode cool");
    expect(build("thermostat", "boost", { minutes: 45 })).toBe("boost 45");
  });

  it("builds the thermostat's commands with the drafted values, and the server refuses an out-of-range setpoint", () => {
    const c = create(CommandSchema, thermostatCommands.buildCommand({ action: "setpoint", values: { setpoint: 36 } }));
    expect(c.kind.case === "thermostat" && c.kind.value.action).toEqual({ case: "setSetpointCelsius", value: 36 });
    const v = new Violations();
    thermostatProduct.validateCommand(c.kind.value!, "command.thermostat", v);
    expect(v.list.map((x) => x.field)).toEqual(["command.thermostat.set_setpoint_celsius"]);
    const boost = create(CommandSchema, thermostatCommands.buildCommand({ action: "boost", values: { minutes: 15 } }));
    expect(boost.kind.case === "thermostat" && boost.kind.value.action.case === "boost" && boost.kind.value.action.value.minutes).toBe(15);
    // The setpoint input's bounds are the server's.
    const field = thermostatCommands.actions.find((a) => a.name === "setpoint")!.fields[0]!;
    expect(field).toMatchObject({ type: "number", min: 5, max: 35, step: 0.5 });
  });

  it("describes task results and LED colours", () => {
    expect(coffeeMachineCommands.describeResult!(create(CoffeeMachineResultSchema, { dispensedMl: 250 }))).toBe("250 ml");
    expect(coffeeMachineCommands.describeResult!(create(CoffeeMachineResultSchema, {}))).toBeUndefined();
    expect(thermostatCommands.describeResult!(create(ThermostatResultSchema, { state: { temperatureCelsius: 19.5 } }))).toBe("19.5 °C");
    expect(hexColor(colorHex(create(ColorSchema, { red: 255, green: 136, blue: 0 })))).toEqual({ red: 255, green: 136, blue: 0 });
  });
});
