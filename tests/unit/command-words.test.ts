import { create, equals, fromJson, toJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CommandResultSchema, CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { Violations } from "../../src/core/errors.js";
import { PRODUCTS } from "../../src/core/products/index.js";

/**
 * Per kind and action word: a value people typically type, and one that cannot be sent (null when
 * the action takes no value). A listed product whose actions are missing here fails the coverage
 * test. A product not listed (one just made by `npm run new-product`) is checked through its help
 * example here and through its own unit test, until its author adds it.
 */
const VALUES: Record<string, Record<string, { good: string | undefined; bad: string | null }>> = {
  led: {
    power: { good: "on", bad: "maybe" },
    color: { good: "#ff8800", bad: "orange" },
    brightness: { good: "40", bad: "bright" },
    mode: { good: "breathe", bad: "disco" },
  },
  coffee_machine: {
    power: { good: "off", bad: "1" },
    brew: { good: "latte:large", bad: "tea" },
    clean: { good: undefined, bad: null },
  },
  thermostat: {
    setpoint: { good: "21.5", bad: "hot" },
    mode: { good: "heat", bad: "warm" },
    boost: { good: "30", bad: "0" },
  },
};

/** Desired-state flags: a typical value and one that cannot be sent. */
const FLAGS: Record<string, Record<string, { good: string; bad: string }>> = {
  led: {
    power: { good: "on", bad: "maybe" },
    color: { good: "255,136,0", bad: "orange" },
    brightness: { good: "40", bad: "bright" },
    mode: { good: "rainbow", bad: "disco" },
  },
  coffee_machine: { power: { good: "off", bad: "maybe" } },
  thermostat: { setpoint: { good: "19", bad: "hot" }, mode: { good: "auto", bad: "warm" } },
};

/** `describe` output back into `(action, value)`: the first word is the action. */
function split(words: string): [string, string | undefined] {
  const [action = "", ...rest] = words.split(" ");
  return [action, rest.length > 0 ? rest.join(" ") : undefined];
}

describe("every product's command words", () => {
  it("this test knows a typical and a bad value for every action and desired flag", () => {
    for (const p of PRODUCTS.filter((x) => VALUES[x.kindName])) {
      expect(Object.keys(VALUES[p.kindName] ?? {}).sort(), p.kindName).toEqual([...p.words.actions].sort());
      expect(Object.keys(FLAGS[p.kindName] ?? {}).sort(), p.kindName).toEqual(p.words.desiredFlags.map((f) => f.name).sort());
    }
  });

  for (const p of PRODUCTS.filter((x) => !VALUES[x.kindName])) {
    it(`${p.kindName} (not in this table yet): its help example parses and describes back to itself`, () => {
      const command = create(CommandSchema, p.words.parse(...split(p.words.example)));
      expect(command.kind.case).toBe(p.case);
      expect(equals(CommandSchema, create(CommandSchema, p.words.parse(...split(p.words.describe(command.kind.value!)))), command)).toBe(true);
    });
  }

  for (const p of PRODUCTS.filter((x) => VALUES[x.kindName])) {
    describe(p.kindName, () => {
      it("parses a typical value of each action into a command of its own case, and describe → parse round-trips", () => {
        for (const action of p.words.actions) {
          const command = create(CommandSchema, p.words.parse(action, VALUES[p.kindName]![action]!.good));
          expect(command.kind.case, action).toBe(p.case);
          const words = p.words.describe(command.kind.value!);
          expect(split(words)[0], words).toBe(action);
          expect(equals(CommandSchema, create(CommandSchema, p.words.parse(...split(words))), command), `${action} → "${words}"`).toBe(true);
          // A typical value is one the server accepts.
          const v = new Violations();
          p.validateCommand(command.kind.value!, "command", v);
          expect(v.list, `${action} ${VALUES[p.kindName]![action]!.good}`).toEqual([]);
        }
      });

      it("the example in its help text parses", () => {
        expect(create(CommandSchema, p.words.parse(...split(p.words.example))).kind.case).toBe(p.case);
      });

      it("refuses bad values, missing values and unknown actions with an error that names what is expected", () => {
        for (const action of p.words.actions) {
          const { good, bad } = VALUES[p.kindName]![action]!;
          if (bad !== null) expect(() => p.words.parse(action, bad), `${action} ${bad}`).toThrow(/expected/);
          if (good !== undefined)
            expect(() => p.words.parse(action, undefined), `${action} without a value`).toThrow(`${action}: missing value\n${p.words.usage}`);
        }
        expect(() => p.words.parse("explode", "now")).toThrow(`unknown action "explode": expected ${p.words.usage}`);
      });

      it("desired flags set exactly the fields their paths name, each alone and all together", () => {
        const all: Record<string, string> = {};
        const fields = new Set<string>();
        for (const flag of p.words.desiredFlags) {
          const value = FLAGS[p.kindName]![flag.name]!.good;
          all[flag.name] = value;
          const { desired, paths } = p.words.parseDesired({ [flag.name]: value });
          expect(desired.$typeName).toBe(p.desiredSchema.typeName);
          expect(paths, flag.name).toHaveLength(1);
          const field = p.desiredSchema.fields.find((f) => f.name === paths[0]);
          expect(field, `${flag.name} → ${paths[0]} is a field of ${p.desiredSchema.typeName}`).toBeDefined();
          fields.add(field!.name);
          // Only that field is set, and it survives the JSON the API carries.
          const json = toJson(p.desiredSchema, desired);
          expect(Object.keys(json as object), flag.name).toEqual([field!.jsonName]);
          expect(equals(p.desiredSchema, fromJson(p.desiredSchema, json), desired)).toBe(true);
          const v = new Violations();
          p.validateDesired(desired, "desired", v);
          expect(v.list, `--${flag.name} ${value}`).toEqual([]);
        }
        const together = p.words.parseDesired(all);
        expect(new Set(together.paths)).toEqual(fields);
        expect(p.words.parseDesired({}).paths).toEqual([]);
      });

      it("refuses a bad desired-flag value, naming the flag and what is expected", () => {
        for (const flag of p.words.desiredFlags) {
          expect(() => p.words.parseDesired({ [flag.name]: FLAGS[p.kindName]![flag.name]!.bad }), flag.name).toThrow(new RegExp(`^--${flag.name} .*expected`));
        }
      });

      it("describes a default result without throwing", () => {
        const result = create(CommandResultSchema, { kind: { case: p.case, value: {} } } as never);
        expect(result.kind.case).toBe(p.case);
        expect(typeof p.words.describeResult(result.kind.value!)).toBe("string");
      });
    });
  }
});

describe("LED colours", () => {
  it("a task and desired state take the same colour formats", () => {
    const led = PRODUCTS.find((p) => p.words.actions.includes("color") && p.words.desiredFlags.some((f) => f.name === "color"))!;
    for (const text of ["#ff8800", "ff8800", "255,136,0"]) {
      const command = create(CommandSchema, led.words.parse("color", text));
      const { desired } = led.words.parseDesired({ color: text });
      expect((command.kind.value as { action: { value: unknown } }).action.value as object, text).toMatchObject({ red: 255, green: 136, blue: 0 });
      expect((desired as unknown as { color: object }).color, text).toMatchObject({ red: 255, green: 136, blue: 0 });
    }
  });
});
