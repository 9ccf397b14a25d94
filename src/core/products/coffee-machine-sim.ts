/**
 * A simulated coffee machine with the behaviour Tether must cope with from real ones: brews take time
 * and report progress, consume water and beans, fail when a tank runs dry, refuse work when off, and
 * can be canceled mid-brew. Timings are options so tests can brew in milliseconds.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { DesiredState } from "../../../gen/tether/device/v1/downlink_pb.js";
import type { Command } from "../../../gen/tether/v1/command_pb.js";
import {
  BrewSchema,
  CoffeeMachineReportedSchema,
  CoffeeMachineStatus,
  CupSize,
  Recipe,
  type Brew,
  type CoffeeMachineResultSchema,
} from "../../../gen/tether/v1/coffee_machine_pb.js";
import {
  round,
  SimFailure,
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

export interface CoffeeMachineSimOptions {
  /** Duration of one brew. Default 3000 ms. */
  brewMs?: number;
  /** Duration of a cleaning cycle. Default 2000 ms. */
  cleanMs?: number;
  /** Initial levels in percent. Default 100. */
  waterPercent?: number;
  beanPercent?: number;
  /** Initially on? Default true. */
  power?: boolean;
  /** Phase of the boiler temperature wave, to vary devices of one fleet. */
  seed?: number;
}

type CoffeeResultInit = MessageInitShape<typeof CoffeeMachineResultSchema>;

const DEFAULT_SIZE: Record<Recipe, CupSize> = {
  [Recipe.UNSPECIFIED]: CupSize.MEDIUM,
  [Recipe.ESPRESSO]: CupSize.SMALL,
  [Recipe.LUNGO]: CupSize.MEDIUM,
  [Recipe.CAPPUCCINO]: CupSize.MEDIUM,
  [Recipe.LATTE]: CupSize.LARGE,
  [Recipe.AMERICANO]: CupSize.LARGE,
  [Recipe.HOT_WATER]: CupSize.MEDIUM,
};
/** Per cup, by size: tank percent, hopper percent, millilitres. */
const WATER_PERCENT = { [CupSize.SMALL]: 10, [CupSize.MEDIUM]: 15, [CupSize.LARGE]: 25 } as Record<CupSize, number>;
const BEAN_PERCENT = { [CupSize.SMALL]: 4, [CupSize.MEDIUM]: 6, [CupSize.LARGE]: 8 } as Record<CupSize, number>;
const MILLILITRES = { [CupSize.SMALL]: 40, [CupSize.MEDIUM]: 150, [CupSize.LARGE]: 250 } as Record<CupSize, number>;
const STEPS = 5; // progress every 20 %

export class CoffeeMachineSim implements SimBehaviour {
  power: boolean;
  status: CoffeeMachineStatus;
  water: number;
  beans: number;
  brew: Brew | undefined;
  private readonly brewMs: number;
  private readonly cleanMs: number;
  private readonly seed: number;

  constructor(opts: CoffeeMachineSimOptions = {}) {
    this.brewMs = opts.brewMs ?? 3_000;
    this.cleanMs = opts.cleanMs ?? 2_000;
    this.water = opts.waterPercent ?? 100;
    this.beans = opts.beanPercent ?? 100;
    this.power = opts.power ?? true;
    this.seed = opts.seed ?? 0;
    this.status = this.power ? CoffeeMachineStatus.IDLE : CoffeeMachineStatus.OFF;
  }

  async execute(command: Command, ctx: SimTaskContext): Promise<SimResultInit> {
    if (command.kind.case !== "coffeeMachine") {
      throw new SimRejection(`a coffee machine cannot execute ${command.kind.case ?? "an empty"} command`);
    }
    const action = command.kind.value.action;
    let result: CoffeeResultInit;
    switch (action.case) {
      case "setPower":
        this.setPower(action.value, ctx);
        result = { dispensedMl: 0 };
        break;
      case "brew":
        result = await this.doBrew(action.value.recipe, action.value.size, ctx);
        break;
      case "clean":
        await this.doClean(ctx);
        result = { dispensedMl: 0 };
        break;
      default:
        throw new SimRejection("empty coffee machine command");
    }
    return { kind: { case: "coffeeMachine", value: { ...result, state: this.snapshot() } } };
  }

  applyDesired(desired: DesiredState, env: SimEnv): void {
    if (desired.kind.case === "coffeeMachine" && desired.kind.value.power !== undefined) {
      this.setPower(desired.kind.value.power, env);
    }
  }

  reported(): SimReportedInit {
    return { kind: { case: "coffeeMachine", value: this.snapshot() } };
  }

  /** The tank level as it is; the boiler holds ~92 °C while on and cools to room temperature when off. */
  tick(_dtMs: number, env: SimEnv): SimSample[] {
    return [
      { metric: "water_level_percent", value: round(this.water) },
      { metric: "boiler_temperature_celsius", value: this.power ? round(92 + 3 * wave(env.now(), this.seed)) : 25 },
    ];
  }

  private snapshot() {
    return create(CoffeeMachineReportedSchema, {
      power: this.power,
      status: this.status,
      waterLevelPercent: Math.round(this.water),
      beanLevelPercent: Math.round(this.beans),
      currentBrew: this.brew ? create(BrewSchema, this.brew) : undefined,
    });
  }

  private setPower(on: boolean, env: SimEnv): void {
    this.power = on;
    // Switching off mid-brew is noticed by the brew loop, which fails with POWER_LOST.
    if (!on) this.status = CoffeeMachineStatus.OFF;
    else if (this.status === CoffeeMachineStatus.OFF) this.status = CoffeeMachineStatus.IDLE;
    env.changed();
  }

  private async doBrew(recipe: Recipe, requested: CupSize, ctx: SimTaskContext): Promise<CoffeeResultInit> {
    if (!this.power) throw new SimRejection("machine is off");
    if (recipe === Recipe.UNSPECIFIED || !(recipe in DEFAULT_SIZE)) throw new SimRejection("a recipe is required");
    const size = requested === CupSize.UNSPECIFIED || !(requested in WATER_PERCENT) ? DEFAULT_SIZE[recipe] : requested;
    const water = WATER_PERCENT[size];
    const beans = recipe === Recipe.HOT_WATER ? 0 : BEAN_PERCENT[size];
    if (this.water < water)
      this.fail(ctx, "WATER_TANK_EMPTY", "not enough water for this drink; refill the tank", {
        water_level_percent: `${Math.round(this.water)}`,
        required_percent: `${water}`,
      });
    if (this.beans < beans)
      this.fail(ctx, "BEAN_HOPPER_EMPTY", "not enough beans for this drink; refill the hopper", {
        bean_level_percent: `${Math.round(this.beans)}`,
        required_percent: `${beans}`,
      });

    this.status = CoffeeMachineStatus.BREWING;
    this.brew = create(BrewSchema, { recipe, size, progressPercent: 0, startTime: timestampFromMs(ctx.now()) });
    ctx.changed();
    try {
      for (let step = 1; step <= STEPS; step++) {
        await ctx.wait(this.brewMs / STEPS);
        if (!this.power) this.fail(ctx, "POWER_LOST", "the machine was switched off while brewing");
        this.water -= water / STEPS;
        this.beans -= beans / STEPS;
        this.brew.progressPercent = (step * 100) / STEPS;
        const stage = step <= 2 && beans > 0 ? "grinding" : step < STEPS ? "brewing" : "done";
        await ctx.progress(this.brew.progressPercent, stage);
        ctx.changed();
      }
    } finally {
      this.brew = undefined;
      if (this.status === CoffeeMachineStatus.BREWING) this.status = CoffeeMachineStatus.IDLE;
      ctx.changed();
    }
    return { dispensedMl: MILLILITRES[size] };
  }

  /** A cleaning cycle; the simulated service also refills water and beans, so a fleet can keep brewing. */
  private async doClean(ctx: SimTaskContext): Promise<void> {
    if (!this.power) throw new SimRejection("machine is off");
    this.status = CoffeeMachineStatus.CLEANING;
    ctx.changed();
    try {
      for (let step = 1; step <= STEPS; step++) {
        await ctx.wait(this.cleanMs / STEPS);
        await ctx.progress((step * 100) / STEPS, step < STEPS ? "descaling" : "rinsed");
      }
      this.water = 100;
      this.beans = 100;
    } finally {
      this.status = this.power ? CoffeeMachineStatus.IDLE : CoffeeMachineStatus.OFF;
      ctx.changed();
    }
  }

  /** Puts the machine into ERROR (it needs attention) and ends the task with a machine-readable code. */
  private fail(env: SimEnv, code: string, message: string, details: Record<string, string> = {}): never {
    if (this.power) this.status = CoffeeMachineStatus.ERROR;
    env.changed();
    throw new SimFailure(code, message, details);
  }
}

export const coffeeMachineSim: SimBehaviourFactory = {
  options: [
    { name: "brewMs", flag: "brew-ms", description: "duration of one brew in ms (default 3000)" },
    { name: "cleanMs", flag: "clean-ms", description: "duration of a cleaning cycle in ms (default 2000)" },
  ],
  create: (o: SimOptions = {}) =>
    new CoffeeMachineSim({ brewMs: o.brewMs, cleanMs: o.cleanMs, waterPercent: o.waterPercent, beanPercent: o.beanPercent, seed: o.seed }),
};
