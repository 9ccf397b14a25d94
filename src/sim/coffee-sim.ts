/**
 * A simulated coffee machine with the behaviour Tether must cope with from real ones: brews take time
 * and report progress, consume water and beans, fail when a tank runs dry, refuse work when off, and
 * can be canceled mid-brew. Timings are options so tests can brew in milliseconds.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { DesiredState } from "../../gen/tether/device/v1/downlink_pb.js";
import {
  BrewSchema,
  CoffeeMachineReportedSchema,
  CoffeeMachineStatus,
  CupSize,
  Recipe,
  type Brew,
  type CoffeeMachineResultSchema,
} from "../../gen/tether/v1/coffee_machine_pb.js";
import { DeviceFailure, DeviceRejection } from "../device/errors.js";
import type { CommandHandler, DeviceTaskContext, ReportedStateInit, TetherDevice } from "../device/tether-device.js";
import { connectSimulator, type SimConnectOptions, type Simulator } from "./simulator.js";

export interface CoffeeSimOptions {
  /** Duration of one brew. Default 3000 ms. */
  brewMs?: number;
  /** Duration of a cleaning cycle. Default 2000 ms. */
  cleanMs?: number;
  /** Initial levels in percent. Default 100. */
  waterPercent?: number;
  beanPercent?: number;
  /** Initially on? Default true. */
  power?: boolean;
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

export class CoffeeSimulator implements Simulator {
  power: boolean;
  status: CoffeeMachineStatus;
  water: number;
  beans: number;
  brew: Brew | undefined;
  private readonly brewMs: number;
  private readonly cleanMs: number;

  constructor(opts: CoffeeSimOptions = {}) {
    this.brewMs = opts.brewMs ?? 3_000;
    this.cleanMs = opts.cleanMs ?? 2_000;
    this.water = opts.waterPercent ?? 100;
    this.beans = opts.beanPercent ?? 100;
    this.power = opts.power ?? true;
    this.status = this.power ? CoffeeMachineStatus.IDLE : CoffeeMachineStatus.OFF;
  }

  readonly handler: CommandHandler = async (command, ctx) => {
    if (command.kind.case !== "coffeeMachine") {
      throw new DeviceRejection(`a coffee machine cannot execute ${command.kind.case ?? "an empty"} command`);
    }
    const action = command.kind.value.action;
    let result: CoffeeResultInit;
    switch (action.case) {
      case "setPower":
        this.setPower(action.value, ctx.device);
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
        throw new DeviceRejection("empty coffee machine command");
    }
    return { kind: { case: "coffeeMachine", value: { ...result, state: this.snapshot() } } };
  };

  onDesiredState(desired: DesiredState, device: TetherDevice): void {
    if (desired.kind.case === "coffeeMachine" && desired.kind.value.power !== undefined) {
      this.setPower(desired.kind.value.power, device);
    }
  }

  reported(): ReportedStateInit {
    return { kind: { case: "coffeeMachine", value: this.snapshot() } };
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

  private setPower(on: boolean, device: TetherDevice): void {
    this.power = on;
    // Switching off mid-brew is noticed by the brew loop, which fails with POWER_LOST.
    if (!on) this.status = CoffeeMachineStatus.OFF;
    else if (this.status === CoffeeMachineStatus.OFF) this.status = CoffeeMachineStatus.IDLE;
    this.report(device);
  }

  private async doBrew(recipe: Recipe, requested: CupSize, ctx: DeviceTaskContext): Promise<CoffeeResultInit> {
    if (!this.power) throw new DeviceRejection("machine is off");
    if (recipe === Recipe.UNSPECIFIED || !(recipe in DEFAULT_SIZE)) throw new DeviceRejection("a recipe is required");
    const size = requested === CupSize.UNSPECIFIED || !(requested in WATER_PERCENT) ? DEFAULT_SIZE[recipe] : requested;
    const water = WATER_PERCENT[size];
    const beans = recipe === Recipe.HOT_WATER ? 0 : BEAN_PERCENT[size];
    if (this.water < water) this.fail(ctx.device, "WATER_TANK_EMPTY", "not enough water for this drink; refill the tank", { water_level_percent: `${Math.round(this.water)}`, required_percent: `${water}` });
    if (this.beans < beans) this.fail(ctx.device, "BEAN_HOPPER_EMPTY", "not enough beans for this drink; refill the hopper", { bean_level_percent: `${Math.round(this.beans)}`, required_percent: `${beans}` });

    this.status = CoffeeMachineStatus.BREWING;
    this.brew = create(BrewSchema, { recipe, size, progressPercent: 0, startTime: timestampNow() });
    this.report(ctx.device);
    try {
      for (let step = 1; step <= STEPS; step++) {
        await sleep(this.brewMs / STEPS, undefined, { signal: ctx.signal });
        if (!this.power) this.fail(ctx.device, "POWER_LOST", "the machine was switched off while brewing");
        this.water -= water / STEPS;
        this.beans -= beans / STEPS;
        this.brew.progressPercent = (step * 100) / STEPS;
        const stage = step <= 2 && beans > 0 ? "grinding" : step < STEPS ? "brewing" : "done";
        await ctx.progress(this.brew.progressPercent, stage);
        this.report(ctx.device);
      }
    } finally {
      this.brew = undefined;
      if (this.status === CoffeeMachineStatus.BREWING) this.status = CoffeeMachineStatus.IDLE;
      this.report(ctx.device);
    }
    return { dispensedMl: MILLILITRES[size] };
  }

  /** A cleaning cycle; the simulated service also refills water and beans, so a fleet can keep brewing. */
  private async doClean(ctx: DeviceTaskContext): Promise<void> {
    if (!this.power) throw new DeviceRejection("machine is off");
    this.status = CoffeeMachineStatus.CLEANING;
    this.report(ctx.device);
    try {
      for (let step = 1; step <= STEPS; step++) {
        await sleep(this.cleanMs / STEPS, undefined, { signal: ctx.signal });
        await ctx.progress((step * 100) / STEPS, step < STEPS ? "descaling" : "rinsed");
      }
      this.water = 100;
      this.beans = 100;
    } finally {
      this.status = this.power ? CoffeeMachineStatus.IDLE : CoffeeMachineStatus.OFF;
      this.report(ctx.device);
    }
  }

  /** Puts the machine into ERROR (it needs attention) and ends the task with a machine-readable code. */
  private fail(device: TetherDevice, code: string, message: string, details: Record<string, string> = {}): never {
    if (this.power) this.status = CoffeeMachineStatus.ERROR;
    this.report(device);
    throw new DeviceFailure(code, message, details);
  }

  private report(device: TetherDevice): void {
    void device.reportState(this.reported()).catch(() => undefined);
  }
}

/** Connects a simulated coffee machine. */
export async function startCoffeeSim(
  conn: SimConnectOptions & CoffeeSimOptions,
): Promise<{ sim: CoffeeSimulator; device: TetherDevice }> {
  const sim = new CoffeeSimulator(conn);
  return { sim, device: await connectSimulator(sim, conn) };
}
