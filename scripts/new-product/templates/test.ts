import type { KindNames } from "../names.js";

/** tests/unit/<file>-product.test.ts: the skeleton's behaviour, so filling it in starts from green tests. */
export function productTest(n: KindNames): string {
  const P = n.pascal;
  return `import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { DesiredStateSchema } from "../../gen/tether/device/v1/downlink_pb.js";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { ${n.case}Commands } from "../../console/src/products/${n.file}-commands.js";
import { Violations } from "../../src/core/errors.js";
import { ${n.case}Product } from "../../src/core/products/${n.file}.js";
import { ${P}Sim, ON_W, STANDBY_W } from "../../src/core/products/${n.file}-sim.js";
import type { SimTaskContext } from "../../src/core/products/sim-behaviour.js";

function env() {
  const e = { t: 1_700_000_000_000, changes: 0 };
  const ctx: SimTaskContext = { now: () => e.t, changed: () => void e.changes++, progress: async () => {}, wait: async (ms) => void (e.t += ms) };
  return { e, ctx };
}

describe("the ${n.label} product", () => {
  it("switches its simulated device with a command and with desired state, and reports it", () => {
    const { e, ctx } = env();
    const sim = new ${P}Sim();
    expect(sim.tick(1000, ctx)).toEqual([{ metric: "power_w", value: STANDBY_W }]);
    const command = create(CommandSchema, ${n.case}Product.words.parse("power", "on"));
    expect(sim.execute(command, ctx)).toMatchObject({ kind: { case: "${n.case}", value: { state: { power: true } } } });
    expect(sim.tick(1000, ctx)[0]!.value).toBeGreaterThan(ON_W * 0.9);
    sim.applyDesired(create(DesiredStateSchema, { version: 1n, kind: { case: "${n.case}", value: { power: false } } }), ctx);
    expect(sim.reported()).toMatchObject({ kind: { case: "${n.case}", value: { power: false } } });
    expect(e.changes).toBe(2);
  });

  it("reads and writes its commands the same way in the CLI and the console, and the server accepts them", () => {
    const c = create(CommandSchema, ${n.case}Commands.buildCommand({ action: "power", values: { power: false } }));
    expect(c.kind.case).toBe("${n.case}");
    const v = new Violations();
    ${n.case}Product.validateCommand(c.kind.value!, "command.${n.kind}", v);
    expect(v.list).toEqual([]);
    expect(${n.case}Product.words.describe(c.kind.value!)).toBe("power off");
    expect(${n.case}Commands.describeCommand(c.kind.value as never)).toBe("power off");
    expect(() => ${n.case}Product.words.parse("power", "maybe")).toThrow(/expected on or off/);
  });

  it("refuses an empty command and parses desired-state flags", () => {
    const v = new Violations();
    ${n.case}Product.validateCommand(create(CommandSchema, { kind: { case: "${n.case}", value: {} } }).kind.value!, "command.${n.kind}", v);
    expect(v.list.map((x) => x.field)).toEqual(["command.${n.kind}.action"]);
    const { desired, paths } = ${n.case}Product.words.parseDesired({ power: "on" });
    expect(paths).toEqual(["power"]);
    expect(desired).toMatchObject({ power: true });
  });
});
`;
}
