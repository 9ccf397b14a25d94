import { usageError } from "./cli-error.js";
import { didYouMean } from "../core/did-you-mean.js";

const SERVE_USAGE = `tether serve    run the control plane until Ctrl-C (also: tether with no command, npm start)
  Configured by environment variables (TETHER_PORT, DATABASE_URL, MQTT_URL, ...): see the README's Configuration.`;

/** What a command's module gives: its help and how it runs. */
interface Loaded {
  usage: string;
  run(args: string[]): Promise<void>;
}

interface Command {
  /**
   * Imports the command's module when it is run or its help is asked for: `tether devices list`
   * loads the client and the device contract, not the server, PGlite or the broker.
   */
  load(): Promise<Loaded>;
  /** The words the command takes first (`devices list`); none: it takes flags only. */
  subcommands?: readonly string[];
}

/** Every `tether <command>`: how it is loaded and its subcommands (checked before it runs). */
const COMMANDS: Record<string, Command> = {
  serve: { load: async () => ({ usage: SERVE_USAGE, run: async () => (await import("./serve.js")).serve() }) },
  migrate: { load: async () => import("./migrate.js").then((m) => ({ usage: m.MIGRATE_USAGE, run: m.migrateCommand })) },
  devices: {
    subcommands: ["create", "get", "list", "count", "update", "delete", "connectivity"],
    load: async () => import("./devices.js").then((m) => ({ usage: m.DEVICES_USAGE, run: m.devicesCommand })),
  },
  tasks: {
    subcommands: ["create", "get", "list", "cancel", "watch"],
    load: async () => import("./tasks.js").then((m) => ({ usage: m.TASKS_USAGE, run: m.tasksCommand })),
  },
  telemetry: {
    subcommands: ["query", "latest", "stream"],
    load: async () => import("./telemetry.js").then((m) => ({ usage: m.TELEMETRY_USAGE, run: m.telemetryCommand })),
  },
  rules: {
    subcommands: ["create", "list", "get", "preview", "pause", "resume", "runs", "delete"],
    load: async () => import("./rules.js").then((m) => ({ usage: m.RULES_USAGE, run: m.rulesCommand })),
  },
  alarms: {
    subcommands: ["list", "get", "ack", "count", "watch"],
    load: async () => import("./alarms.js").then((m) => ({ usage: m.ALARMS_USAGE, run: m.alarmsCommand })),
  },
  certs: {
    subcommands: ["issue", "renew", "revoke", "list", "get", "crl"],
    load: async () => import("./certs.js").then((m) => ({ usage: m.CERTS_USAGE, run: m.certsCommand })),
  },
  provisioning: {
    subcommands: ["create", "list", "get", "delete", "allow", "records", "claim-cert", "provision"],
    load: async () => import("./provisioning.js").then((m) => ({ usage: m.PROVISIONING_USAGE, run: m.provisioningCommand })),
  },
  jobs: {
    subcommands: ["create", "schedule", "list", "get", "watch", "executions", "pause", "resume", "cancel"],
    load: async () => import("./jobs.js").then((m) => ({ usage: m.JOBS_USAGE, run: m.jobsCommand })),
  },
  webhooks: {
    subcommands: ["create", "list", "get", "update", "delete", "deliveries", "replay", "rotate-secret"],
    load: async () => import("./webhooks.js").then((m) => ({ usage: m.WEBHOOKS_USAGE, run: m.webhooksCommand })),
  },
  firmware: {
    subcommands: ["upload", "list", "get", "delete", "keys", "rotate-key", "verify"],
    load: async () => import("./firmware.js").then((m) => ({ usage: m.FIRMWARE_USAGE, run: m.firmwareCommand })),
  },
  simulate: { load: async () => import("./simulate.js").then((m) => ({ usage: m.SIMULATE_USAGE, run: (args: string[]) => m.simulateCommand(args) })) },
  login: { load: async () => import("./login.js").then((m) => ({ usage: m.LOGIN_USAGE, run: (args: string[]) => m.loginCommand("login", args) })) },
  logout: { load: async () => import("./login.js").then((m) => ({ usage: m.LOGIN_USAGE, run: (args: string[]) => m.loginCommand("logout", args) })) },
  whoami: { load: async () => import("./login.js").then((m) => ({ usage: m.LOGIN_USAGE, run: (args: string[]) => m.loginCommand("whoami", args) })) },
  users: {
    subcommands: ["create", "list", "get", "delete", "set-password", "add-to-group", "remove-from-group", "groups", "api-keys"],
    load: async () => import("./users.js").then((m) => ({ usage: m.USERS_USAGE, run: m.usersCommand })),
  },
  share: {
    subcommands: ["add", "remove", "list"],
    load: async () => import("./share.js").then((m) => ({ usage: m.SHARE_USAGE, run: m.shareCommand })),
  },
  mcp: { load: async () => import("./mcp.js").then((m) => ({ usage: m.MCP_USAGE, run: m.mcpCommand })) },
  audit: {
    subcommands: ["list", "watch"],
    load: async () => import("./audit.js").then((m) => ({ usage: m.AUDIT_USAGE, run: m.auditCommand })),
  },
};

/** The commands whose help `tether --help` prints after the overview, in this order. */
const HELP_ORDER = [
  "devices",
  "tasks",
  "telemetry",
  "rules",
  "alarms",
  "certs",
  "provisioning",
  "login",
  "users",
  "share",
  "audit",
  "jobs",
  "webhooks",
  "firmware",
  "mcp",
  "simulate",
  "migrate",
];

/** `tether --help`: the overview, then every command's usage (which loads each command's module, not the server). */
export async function usage(): Promise<string> {
  const usages = await Promise.all(HELP_ORDER.map(async (c) => (await COMMANDS[c]!.load()).usage));
  return `tether — gRPC-first IoT control plane

  tether serve              run the control plane (embedded PostgreSQL and MQTT broker by default)
  tether migrate            apply database migrations to DATABASE_URL and exit
  tether devices ...        manage the device registry
  tether tasks ...          send commands to devices and follow them
  tether telemetry ...      query, export (CSV) and stream device measurements
  tether rules ...          tasks on a schedule (cron, one shot) or on a device condition; alarm rules
  tether alarms ...         list, acknowledge, count and watch alarms
  tether certs ...          issue, renew, revoke and list device certificates; the CRL
  tether provisioning ...   zero-touch provisioning: templates, claim certificates, provision
  tether jobs ...           one command to many devices, rolled out at a controlled rate
  tether webhooks ...       POST fleet events to HTTPS endpoints; deliveries, replay, secret rotation
  tether firmware ...       firmware images: upload, list, signing keys; verify a file offline
  tether simulate ...       run simulated devices
  tether login / logout     sign in with a password (tokens replace the admin certificate)
  tether users ...          users, groups and API keys
  tether share ...          share devices or label selectors with users and groups
  tether audit ...          the audit log: who changed what, when, with what outcome
  tether mcp                an MCP server on stdio for AI assistants, with this CLI's credential

tether <command> --help shows a command's subcommands and flags.

${usages.join("\n\n")}`;
}

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
    console.log(topic ? (await topic.load()).usage : await usage());
    return;
  }
  const command = COMMANDS[name];
  if (!command) throw usageError(`unknown command "${name}" for "tether"${quoted(didYouMean(name, Object.keys(COMMANDS)))}`, "tether");
  if (asksForHelp(rest)) {
    console.log((await command.load()).usage);
    return;
  }
  if (command.subcommands) {
    const sub = rest[0];
    if (sub === undefined || sub.startsWith("-"))
      throw usageError(`missing command for "tether ${name}": one of ${command.subcommands.join(", ")}`, `tether ${name}`);
    if (!command.subcommands.includes(sub))
      throw usageError(`unknown command "${sub}" for "tether ${name}"${quoted(didYouMean(sub, command.subcommands))}`, `tether ${name}`);
  }
  const loaded = await command.load();
  try {
    await loaded.run(rest);
  } catch (err) {
    throw fromParseError(err, name, loaded.usage);
  }
}
