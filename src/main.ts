import { CERTS_USAGE, certsCommand } from "./cli/certs.js";
import { devicesCommand, DEVICES_USAGE } from "./cli/devices.js";
import { PROVISIONING_USAGE, provisioningCommand } from "./cli/provisioning.js";
import { describeError } from "./cli/format.js";
import { MIGRATE_USAGE, migrateCommand } from "./cli/migrate.js";
import { serve } from "./cli/serve.js";
import { SIMULATE_USAGE, simulateCommand } from "./cli/simulate.js";
import { JOBS_USAGE, jobsCommand } from "./cli/jobs.js";
import { RULES_USAGE, rulesCommand } from "./cli/rules.js";
import { TASKS_USAGE, tasksCommand } from "./cli/tasks.js";
import { TELEMETRY_USAGE, telemetryCommand } from "./cli/telemetry.js";
import { LOGIN_USAGE, loginCommand } from "./cli/login.js";
import { SHARE_USAGE, shareCommand } from "./cli/share.js";
import { USERS_USAGE, usersCommand } from "./cli/users.js";

const USAGE = `tether — gRPC-first IoT control plane

  tether serve              run the control plane (embedded PostgreSQL and MQTT broker by default)
  tether migrate            apply database migrations to DATABASE_URL and exit
  tether devices ...        manage the device registry
  tether tasks ...          send commands to devices and follow them
  tether telemetry ...      query, export (CSV) and stream device measurements
  tether rules ...          tasks on a schedule (cron, one shot) or on a device condition
  tether certs ...          issue, renew, revoke and list device certificates; the CRL
  tether provisioning ...   zero-touch provisioning: templates, claim certificates, provision
  tether jobs ...           one command to many devices, rolled out at a controlled rate
  tether simulate ...       run simulated devices
  tether login / logout     sign in with a password (tokens replace the admin certificate)
  tether users ...          users, groups and API keys
  tether share ...          share devices or label selectors with users and groups

${DEVICES_USAGE}

${TASKS_USAGE}

${TELEMETRY_USAGE}

${RULES_USAGE}

${CERTS_USAGE}

${PROVISIONING_USAGE}

${LOGIN_USAGE}

${USERS_USAGE}

${SHARE_USAGE}

${JOBS_USAGE}

tether simulate: ${SIMULATE_USAGE}

${MIGRATE_USAGE}`;

/** Entry point of `npm start` and the `tether` binary: only dispatches; app.ts composes. */
async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command ?? "serve") {
    case "serve":
      return serve();
    case "migrate":
      return migrateCommand(rest);
    case "devices":
      return devicesCommand(rest);
    case "tasks":
      return tasksCommand(rest);
    case "telemetry":
      return telemetryCommand(rest);
    case "rules":
      return rulesCommand(rest);
    case "certs":
      return certsCommand(rest);
    case "provisioning":
      return provisioningCommand(rest);
    case "login":
    case "logout":
    case "whoami":
      return loginCommand(command as "login" | "logout" | "whoami", rest);
    case "users":
      return usersCommand(rest);
    case "share":
      return shareCommand(rest);
    case "jobs":
      return jobsCommand(rest);
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
