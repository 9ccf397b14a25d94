import { CERTS_USAGE, certsCommand } from "./certs.js";
import { usageError } from "./cli-error.js";
import { devicesCommand, DEVICES_USAGE } from "./devices.js";
import { didYouMean } from "../core/did-you-mean.js";
import { JOBS_USAGE, jobsCommand } from "./jobs.js";
import { LOGIN_USAGE, loginCommand } from "./login.js";
import { MIGRATE_USAGE, migrateCommand } from "./migrate.js";
import { PROVISIONING_USAGE, provisioningCommand } from "./provisioning.js";
import { RULES_USAGE, rulesCommand } from "./rules.js";
import { serve } from "./serve.js";
import { SHARE_USAGE, shareCommand } from "./share.js";
import { SIMULATE_USAGE, simulateCommand } from "./simulate.js";
import { TASKS_USAGE, tasksCommand } from "./tasks.js";
import { TELEMETRY_USAGE, telemetryCommand } from "./telemetry.js";
import { USERS_USAGE, usersCommand } from "./users.js";

const SERVE_USAGE = `tether serve    run the control plane until Ctrl-C (also: tether with no command, npm start)
  Configured by environment variables (TETHER_PORT, DATABASE_URL, MQTT_URL, ...): see the README's Configuration.`;

interface Command {
  usage: string;
  /** The words the command takes first (`devices list`); none: it takes flags only. */
  subcommands?: readonly string[];
  run(args: string[]): Promise<void>;
}

/** Every `tether <command>`: how it is run, its help and its subcommands (checked before it runs). */
const COMMANDS: Record<string, Command> = {
  serve: { usage: SERVE_USAGE, run: () => serve() },
  migrate: { usage: MIGRATE_USAGE, run: migrateCommand },
  devices: { usage: DEVICES_USAGE, subcommands: ["create", "get", "list", "update", "delete"], run: devicesCommand },
  tasks: { usage: TASKS_USAGE, subcommands: ["create", "get", "list", "cancel", "watch"], run: tasksCommand },
  telemetry: { usage: TELEMETRY_USAGE, subcommands: ["query", "latest", "stream"], run: telemetryCommand },
  rules: { usage: RULES_USAGE, subcommands: ["create", "list", "get", "preview", "pause", "resume", "runs", "delete"], run: rulesCommand },
  certs: { usage: CERTS_USAGE, subcommands: ["issue", "renew", "revoke", "list", "get", "crl"], run: certsCommand },
  provisioning: {
    usage: PROVISIONING_USAGE,
    subcommands: ["create", "list", "get", "delete", "allow", "records", "claim-cert", "provision"],
    run: provisioningCommand,
  },
  jobs: { usage: JOBS_USAGE, subcommands: ["create", "schedule", "list", "get", "watch", "executions", "pause", "resume", "cancel"], run: jobsCommand },
  simulate: { usage: SIMULATE_USAGE, run: simulateCommand },
  login: { usage: LOGIN_USAGE, run: (args) => loginCommand("login", args) },
  logout: { usage: LOGIN_USAGE, run: (args) => loginCommand("logout", args) },
  whoami: { usage: LOGIN_USAGE, run: (args) => loginCommand("whoami", args) },
  users: {
    usage: USERS_USAGE,
    subcommands: ["create", "list", "get", "delete", "set-password", "add-to-group", "remove-from-group", "groups", "api-keys"],
    run: usersCommand,
  },
  share: { usage: SHARE_USAGE, subcommands: ["add", "remove", "list"], run: shareCommand },
};

export const USAGE = `tether — gRPC-first IoT control plane

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

tether <command> --help shows a command's subcommands and flags.

${["devices", "tasks", "telemetry", "rules", "certs", "provisioning", "login", "users", "share", "jobs", "simulate", "migrate"].map((c) => COMMANDS[c]!.usage).join("\n\n")}`;

/** Flags every command takes, besides those its usage names. */
const GLOBAL_FLAGS = ["--json", "--address", "--certs", "--help"];

const quoted = (s: string | undefined) => (s === undefined ? "" : `; did you mean "${s}"?`);

/** The flags a command's usage text names (`--kind`, `--page-size`), for suggestions. */
const flagsOf = (usage: string) => [...new Set([...(usage.match(/--[a-z][a-z0-9-]*/g) ?? []), ...GLOBAL_FLAGS])];

/**
 * Node's parseArgs errors (unknown option, missing value, stray argument) as one usage line:
 * the raw text ("To specify a positional argument starting with a '-' …") helps nobody.
 */
function fromParseError(err: unknown, command: string, usage: string): unknown {
  // ConnectError's code is a number; Node's parse errors carry a string.
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS_")) return err;
  const message = err instanceof Error ? err.message : String(err);
  const where = `tether ${command}`;
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown) {
    const suggestion = didYouMean(unknown[1]!, flagsOf(usage));
    return usageError(`unknown option ${unknown[1]}${suggestion ? `; did you mean ${suggestion}?` : ""}`, where);
  }
  const missing = /^Option '(-\w, )?(--[\w-]+)[^']*' argument missing/.exec(message);
  if (missing) return usageError(`option ${missing[2]} needs a value`, where);
  const stray = /^Unexpected argument '([^']*)'/.exec(message);
  if (stray) return usageError(`unexpected argument "${stray[1]}" for "${where}"`, where);
  return usageError(message, where);
}

/** Whether the arguments ask for help (before a `--`, after which everything is a value). */
function asksForHelp(args: string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === "--help" || a === "-h");
}

/** Runs `tether <argv>`: help, usage errors with suggestions, then the command itself. */
export async function runCli(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  const name = first ?? "serve";
  if (name === "help" || name === "--help" || name === "-h") {
    const topic = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    if (rest[0] !== undefined && !topic)
      throw usageError(`unknown command "${rest[0]}" for "tether"${quoted(didYouMean(rest[0], Object.keys(COMMANDS)))}`, "tether");
    console.log(topic?.usage ?? USAGE);
    return;
  }
  const command = COMMANDS[name];
  if (!command) throw usageError(`unknown command "${name}" for "tether"${quoted(didYouMean(name, Object.keys(COMMANDS)))}`, "tether");
  if (asksForHelp(rest)) {
    console.log(command.usage);
    return;
  }
  if (command.subcommands) {
    const sub = rest[0];
    if (sub === undefined || sub.startsWith("-"))
      throw usageError(`missing command for "tether ${name}": one of ${command.subcommands.join(", ")}`, `tether ${name}`);
    if (!command.subcommands.includes(sub))
      throw usageError(`unknown command "${sub}" for "tether ${name}"${quoted(didYouMean(sub, command.subcommands))}`, `tether ${name}`);
  }
  try {
    await command.run(rest);
  } catch (err) {
    throw fromParseError(err, name, command.usage);
  }
}
