import { devicesCommand, DEVICES_USAGE } from "./cli/devices.js";
import { describeError } from "./cli/format.js";
import { serve } from "./cli/serve.js";
import { SIMULATE_USAGE, simulateCommand } from "./cli/simulate.js";
import { RULES_USAGE, rulesCommand } from "./cli/rules.js";
import { TASKS_USAGE, tasksCommand } from "./cli/tasks.js";
import { TELEMETRY_USAGE, telemetryCommand } from "./cli/telemetry.js";

const USAGE = `tether — gRPC-first IoT control plane

  tether serve              run the control plane (embedded PostgreSQL and MQTT broker by default)
  tether devices ...        manage the device registry
  tether tasks ...          send commands to devices and follow them
  tether telemetry ...      query, export (CSV) and stream device measurements
  tether rules ...          tasks on a schedule (cron, one shot) or on a device condition
  tether simulate ...       run simulated devices

${DEVICES_USAGE}

${TASKS_USAGE}

${TELEMETRY_USAGE}

${RULES_USAGE}

tether simulate: ${SIMULATE_USAGE}`;

/** Entry point of `npm start` and the `tether` binary: only dispatches; app.ts composes. */
async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command ?? "serve") {
    case "serve":
      return serve();
    case "devices":
      return devicesCommand(rest);
    case "tasks":
      return tasksCommand(rest);
    case "telemetry":
      return telemetryCommand(rest);
    case "rules":
      return rulesCommand(rest);
    case "simulate":
      return simulateCommand(rest);
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return;
    default:
      throw new Error(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(describeError(err));
  process.exit(1);
});
