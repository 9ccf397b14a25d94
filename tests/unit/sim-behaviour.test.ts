import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { DesiredStateSchema } from "../../gen/tether/device/v1/downlink_pb.js";
import { CoffeeMachineStatus, Recipe } from "../../gen/tether/v1/coffee_machine_pb.js";
import { CommandSchema, type Command } from "../../gen/tether/v1/command_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ThermostatAction, ThermostatMode } from "../../gen/tether/v1/thermostat_pb.js";
import { CoffeeMachineSim } from "../../src/core/products/coffee-machine-sim.js";
import { PRODUCTS } from "../../src/core/products/index.js";
import { SimFailure, SimRejection, type SimTaskContext } from "../../src/core/products/sim-behaviour.js";
import { HEAT_RATE, HYSTERESIS, ThermostatSim } from "../../src/core/products/thermostat-sim.js";

/** A hand-driven clock: `wait` advances it at once, so slow commands run instantly and deterministically. */
interface FakeEnv {
  t: number;
  changes: number;
  progress: Array<[number, string | undefined]>;
  now(): number;
  changed(): void;
  ctx(): SimTaskContext;
  run(sim: { tick(dt: number, e: FakeEnv): unknown }, seconds: number, each?: () => void): void;
}

function fakeEnv(start = 1_700_000_000_000): FakeEnv {
  const env: FakeEnv = {
    t: start,
    changes: 0,
    progress: [] as Array<[number, string | undefined]>,
    now: () => env.t,
    changed: () => void env.changes++,
    ctx(): SimTaskContext {
      return {
        now: env.now,
        changed: env.changed,
        progress: async (p, m) => void env.progress.push([p, m]),
        wait: async (ms) => void (env.t += ms),
      };
    },
    /** Runs `sim.tick` for `seconds` of wall time in 1 s steps. */
    run(sim, seconds, each) {
      for (let i = 0; i < seconds; i++) {
        env.t += 1000;
        sim.tick(1000, env);
        each?.();
      }
    },
  };
  return env;
}
const command = (init: MessageInitShape<typeof CommandSchema>): Command => create(CommandSchema, init);
const thermo = (
  action: NonNullable<MessageInitShape<typeof CommandSchema>["kind"]> extends infer K ? (K extends { case: "thermostat"; value: infer V } ? V : never) : never,
) => command({ kind: { case: "thermostat", value: action } });

describe("every product's simulated behaviour", () => {
  it("exists, and its readings are the metrics the product declares", () => {
    for (const p of PRODUCTS) {
      const sim = p.sim.create({ seed: 3 });
      const names = sim.tick(1000, fakeEnv()).map((x) => x.metric);
      expect(names.length, p.kindName).toBeGreaterThan(0);
      expect(names.sort(), p.kindName).toEqual(p.metrics.map((m) => m.name).sort());
      expect(sim.reported().kind?.case).toBe(p.case);
    }
  });

  it("refuses another product's command", async () => {
    for (const p of PRODUCTS) {
      const other = PRODUCTS.find((x) => x !== p)!;
      const sim = p.sim.create();
      const run = Promise.resolve().then(() => sim.execute(command({ kind: { case: other.case, value: {} } as never }), fakeEnv().ctx()));
      await expect(run, p.kindName).rejects.toBeInstanceOf(SimRejection);
    }
  });
});

describe("the simulated thermostat", () => {
  it("drifts toward the outside temperature when off", () => {
    const env = fakeEnv();
    const sim = new ThermostatSim({ roomCelsius: 20, outsideCelsius: 12, mode: ThermostatMode.OFF });
    env.run(sim, 3600);
    expect(sim.action).toBe(ThermostatAction.IDLE);
    expect(sim.temperature).toBeLessThan(17.5); // ~1 h time constant: 20 → 12 + 8/e ≈ 14.9
    expect(sim.temperature).toBeGreaterThan(12);
  });

  it("heats toward the setpoint at a plausible rate, then holds it within the hysteresis band", () => {
    const env = fakeEnv();
    const sim = new ThermostatSim({ roomCelsius: 15, setpointCelsius: 21, mode: ThermostatMode.HEAT });
    expect(sim.action).toBe(ThermostatAction.HEATING);
    env.run(sim, 10);
    const rate = (sim.temperature - 15) / 10;
    expect(rate).toBeGreaterThan(0.05);
    expect(rate).toBeLessThanOrEqual(HEAT_RATE);
    env.run(sim, 120);
    const seen = new Set<ThermostatAction>();
    let min = Infinity;
    let max = -Infinity;
    env.run(sim, 3600, () => {
      seen.add(sim.action);
      min = Math.min(min, sim.temperature);
      max = Math.max(max, sim.temperature);
    });
    expect(seen).toEqual(new Set([ThermostatAction.HEATING, ThermostatAction.IDLE])); // cycles, never cools
    expect(min).toBeGreaterThan(21 - HYSTERESIS - 0.05);
    expect(max).toBeLessThan(21 + HYSTERESIS + HEAT_RATE + 0.01);
    expect(max).toBeGreaterThan(21 + HYSTERESIS - 0.01); // heats through the band, not just to the setpoint
  });

  it("in AUTO never cools right after heating, or heats right after cooling", () => {
    const env = fakeEnv();
    const sim = new ThermostatSim({ roomCelsius: 18, setpointCelsius: 21, mode: ThermostatMode.AUTO });
    const actions: ThermostatAction[] = [];
    env.run(sim, 3600, () => actions.at(-1) !== sim.action && actions.push(sim.action));
    expect(actions).not.toContain(ThermostatAction.COOLING); // a room losing heat only ever needs heating
    expect(actions.filter((a) => a === ThermostatAction.HEATING).length).toBeGreaterThan(1);
  });

  it("in AUTO cools a warm room and in COOL never heats", () => {
    const env = fakeEnv();
    const auto = new ThermostatSim({ roomCelsius: 26, setpointCelsius: 21, mode: ThermostatMode.AUTO, outsideCelsius: 30 });
    expect(auto.action).toBe(ThermostatAction.COOLING);
    env.run(auto, 600);
    expect(auto.temperature).toBeLessThan(21.5);
    const cool = new ThermostatSim({ roomCelsius: 15, setpointCelsius: 21, mode: ThermostatMode.COOL });
    env.run(cool, 60);
    expect(cool.action).toBe(ThermostatAction.IDLE);
    expect(cool.temperature).toBeLessThan(15);
  });

  it("keeps humidity within 30–60 %, a little drier while heating", () => {
    const env = fakeEnv();
    const off = new ThermostatSim({ mode: ThermostatMode.OFF, humidityPercent: 45, seed: 7 });
    const heating = new ThermostatSim({ mode: ThermostatMode.HEAT, setpointCelsius: 35, roomCelsius: 10, humidityPercent: 45, seed: 7 });
    const all: number[] = [];
    // Same seed, same noise: the difference is the heating's (it heats all 200 s).
    env.run(off, 200, () => all.push(off.humidity));
    env.run(heating, 200, () => all.push(heating.humidity));
    expect(heating.action).toBe(ThermostatAction.HEATING);
    expect(heating.humidity).toBeLessThan(off.humidity - 1);
    env.run(off, 7200, () => all.push(off.humidity));
    expect(Math.min(...all)).toBeGreaterThanOrEqual(30);
    expect(Math.max(...all)).toBeLessThanOrEqual(60);
  });

  it("applies set_setpoint, set_mode and desired state, and reports each", () => {
    const env = fakeEnv();
    const sim = new ThermostatSim({ mode: ThermostatMode.OFF });
    const r1 = sim.execute(thermo({ action: { case: "setSetpointCelsius", value: 19.5 } }), env.ctx());
    expect(r1).toMatchObject({ kind: { case: "thermostat", value: { state: { setpointCelsius: 19.5 } } } });
    sim.execute(thermo({ action: { case: "setMode", value: ThermostatMode.COOL } }), env.ctx());
    expect(sim.mode).toBe(ThermostatMode.COOL);
    expect(() => sim.execute(thermo({ action: { case: "setMode", value: ThermostatMode.UNSPECIFIED } }), env.ctx())).toThrow(SimRejection);
    expect(() => sim.execute(thermo({ action: { case: "setSetpointCelsius", value: 80 } }), env.ctx())).toThrow(SimRejection);
    sim.applyDesired(create(DesiredStateSchema, { version: 1n, kind: { case: "thermostat", value: { setpointCelsius: 23 } } }), env);
    expect(sim.setpoint).toBe(23);
    expect(sim.mode).toBe(ThermostatMode.COOL); // UNSPECIFIED in a desired state keeps the mode
    expect(env.changes).toBe(3);
    const reported = sim.reported().kind;
    expect(reported).toMatchObject({ case: "thermostat", value: { setpointCelsius: 23, mode: ThermostatMode.COOL, action: ThermostatAction.IDLE } });
  });

  it("boosts for N minutes (scaled by timeScale), reports the end time, then returns to its mode", () => {
    const env = fakeEnv();
    const sim = new ThermostatSim({ roomCelsius: 22, setpointCelsius: 21, mode: ThermostatMode.HEAT, timeScale: 60 });
    expect(sim.action).toBe(ThermostatAction.IDLE);
    const start = env.t;
    const r = sim.execute(thermo({ action: { case: "boost", value: { minutes: 5 } } }), env.ctx());
    const end = (r.kind!.value as { state: { boostEndTime: Parameters<typeof timestampMs>[0] } }).state.boostEndTime;
    expect(timestampMs(end)).toBe(start + 5_000); // 5 simulated minutes at 60× is 5 s
    expect(sim.action).toBe(ThermostatAction.HEATING);
    env.run(sim, 4);
    expect(sim.temperature).toBeGreaterThan(22 + 0.5); // heated above the setpoint
    env.run(sim, 2);
    expect(sim.boostEndMs).toBeUndefined();
    expect(sim.action).toBe(ThermostatAction.IDLE); // back to HEAT, and the room is warm enough
    expect(sim.reported().kind?.value).toMatchObject({ mode: ThermostatMode.HEAT });
    expect((sim.reported().kind!.value as { boostEndTime?: unknown }).boostEndTime).toBeUndefined();
  });

  it("reports on a tick only when a reported value moved", () => {
    const env = fakeEnv();
    const sim = new ThermostatSim({ roomCelsius: 21, setpointCelsius: 21, mode: ThermostatMode.OFF, outsideCelsius: 21, humidityPercent: 45 });
    sim.tick(10, env);
    expect(env.changes).toBe(0);
  });
});

describe("the simulated coffee machine", () => {
  const brew = command({ kind: { case: "coffeeMachine", value: { action: { case: "brew", value: { recipe: Recipe.ESPRESSO } } } } });

  it("brews in five timed steps with progress, consuming water", async () => {
    const env = fakeEnv();
    const sim = new CoffeeMachineSim({ brewMs: 1000 });
    const start = env.t;
    const result = await sim.execute(brew, env.ctx());
    expect(env.t - start).toBe(1000);
    expect(env.progress.map(([p]) => p)).toEqual([20, 40, 60, 80, 100]);
    expect(result).toMatchObject({ kind: { value: { dispensedMl: 40, state: { waterLevelPercent: 90 } } } });
    expect(sim.status).toBe(CoffeeMachineStatus.IDLE);
  });

  it("fails with POWER_LOST when switched off mid-brew, and WATER_TANK_EMPTY when dry", async () => {
    const env = fakeEnv();
    const sim = new CoffeeMachineSim({ brewMs: 1000 });
    const ctx = env.ctx();
    const off = {
      ...ctx,
      wait: async (ms: number) => {
        env.t += ms;
        sim.power = false;
      },
    };
    await expect(sim.execute(brew, off)).rejects.toMatchObject({ code: "POWER_LOST" });
    const dry = new CoffeeMachineSim({ waterPercent: 5 });
    const err = await Promise.resolve(dry.execute(brew, env.ctx())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimFailure);
    expect(err).toMatchObject({ code: "WATER_TANK_EMPTY" });
    expect(dry.status).toBe(CoffeeMachineStatus.ERROR);
  });
});
