import type { KindNames } from "../names.js";

/** src/core/products/<file>-sim.ts: how a simulated one behaves (pure logic; src/sim/ runs it). */
export function simModule(n: KindNames): string {
  const P = n.pascal;
  return `/**
 * A simulated ${n.label}: switches on and off at once, and draws a little power on standby and about
 * \`ON_W\` while on, with a slow per-device wave so a fleet's readings differ. TODO: its real physics.
 */
import { create } from "@bufbuild/protobuf";
import type { DesiredState } from "../../../gen/tether/device/v1/downlink_pb.js";
import type { Command } from "../../../gen/tether/v1/command_pb.js";
import { ${P}ReportedSchema } from "../../../gen/tether/v1/${n.kind}_pb.js";
import { round, SimRejection, wave, type SimBehaviour, type SimBehaviourFactory, type SimEnv, type SimOptions, type SimReportedInit, type SimResultInit, type SimSample, type SimTaskContext } from "./sim-behaviour.js";

/** Watts drawn while switched off. */
export const STANDBY_W = 0.5;
/** Watts drawn while on (± 5 %). */
export const ON_W = 50;

export class ${P}Sim implements SimBehaviour {
  power = false;

  constructor(private readonly seed = 0) {}

  execute(command: Command, ctx: SimTaskContext): SimResultInit {
    if (command.kind.case !== "${n.case}") {
      throw new SimRejection(\`${n.aLabel} cannot execute \${command.kind.case ?? "an empty"} command\`);
    }
    const action = command.kind.value.action;
    switch (action.case) {
      case "setPower":
        this.power = action.value;
        break;
      default:
        throw new SimRejection("empty ${n.label} command");
    }
    ctx.changed();
    return { kind: { case: "${n.case}", value: { state: this.snapshot() } } };
  }

  /** Applies only the fields the desired state names. */
  applyDesired(desired: DesiredState, env: SimEnv): void {
    if (desired.kind.case !== "${n.case}") return;
    const want = desired.kind.value;
    if (want.power !== undefined) this.power = want.power;
    env.changed();
  }

  reported(): SimReportedInit {
    return { kind: { case: "${n.case}", value: this.snapshot() } };
  }

  tick(_dtMs: number, env: SimEnv): SimSample[] {
    const watts = this.power ? ON_W * (1 + 0.05 * wave(env.now(), this.seed)) : STANDBY_W;
    return [{ metric: "power_w", value: round(watts) }];
  }

  private snapshot() {
    return create(${P}ReportedSchema, { power: this.power });
  }
}

export const ${n.case}Sim: SimBehaviourFactory = {
  options: [],
  create: (options: SimOptions = {}) => new ${P}Sim(options.seed ?? 0),
};
`;
}
