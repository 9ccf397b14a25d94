/**
 * The start refusal of production mode. The files in `deploy/` and `.env.example` ship placeholder
 * passwords so that they can be copied; a deployment that forgot to replace one, or that stores
 * JWT signing keys unsealed, must not come up looking healthy. Production mode is an external
 * database or event bus (`DATABASE_URL`, `AMQP_URL`): state shared by replicas, reachable by others.
 */
import type { Logger } from "./log.js";

/** The slice of the configuration this check needs. */
export interface SafetyConfig {
  safety: { allowInsecure: boolean; problems: readonly string[] };
}

/** Shortest accepted `TETHER_SIGNING_KEY_SECRET`: 24 random bytes in base64 (`openssl rand -base64 24`). */
export const MIN_SIGNING_KEY_SECRET_LENGTH = 32;

/**
 * Values that are never a real password: the placeholders of `deploy/`, `.env.example` and the
 * documentation, and the brokers' and databases' well-known defaults. Compared lower-case with
 * everything but letters and digits removed, so `change-me`, `CHANGE_ME` and `ChangeMe` all match.
 */
const PLACEHOLDERS = new Set([
  "changeme",
  "replaceme",
  "secret",
  "password",
  "passw0rd",
  "guest",
  "admin",
  "tether",
  "postgres",
  "rabbitmq",
  "example",
  "default",
  "placeholder",
  "123456",
  "xxx",
  "todo",
]);
/** A value containing one of these is a placeholder too (`change-me-please`, `<replace with ...>`). */
const PLACEHOLDER_PARTS = ["changeme", "replaceme", "replacewith", "placeholder", "example"];

/** True for a known placeholder or default password (the value itself is never logged). */
export function isPlaceholder(value: string): boolean {
  const v = value.toLowerCase().replace(/[^a-z0-9]/g, "");
  return PLACEHOLDERS.has(v) || PLACEHOLDER_PARTS.some((p) => v.includes(p));
}

/**
 * What makes this environment unsafe in production mode, one readable line each, naming the
 * variable but never its value. Empty in embedded mode (nothing set), where the data directory
 * holds a generated signing-key secret and no network service has a password.
 */
export function productionProblems(env: NodeJS.ProcessEnv): string[] {
  const databaseUrl = nonEmpty(env.DATABASE_URL);
  const amqpUrl = nonEmpty(env.AMQP_URL);
  if (databaseUrl === undefined && amqpUrl === undefined) return [];
  const problems: string[] = [];
  const secret = nonEmpty(env.TETHER_SIGNING_KEY_SECRET);
  if (secret === undefined) {
    problems.push(
      "TETHER_SIGNING_KEY_SECRET is not set: JWT signing keys would be stored unsealed in the database (give every replica the same random value from a secret)",
    );
  } else if (isPlaceholder(secret)) {
    problems.push("TETHER_SIGNING_KEY_SECRET is a placeholder: set a random value (openssl rand -base64 32)");
  } else if (secret.length < MIN_SIGNING_KEY_SECRET_LENGTH) {
    problems.push(`TETHER_SIGNING_KEY_SECRET is shorter than ${MIN_SIGNING_KEY_SECRET_LENGTH} characters: set a random value (openssl rand -base64 32)`);
  }
  if (databaseUrl !== undefined && placeholderPassword(databaseUrl)) problems.push("DATABASE_URL carries a placeholder password");
  const pgPassword = nonEmpty(env.PGPASSWORD);
  if (pgPassword !== undefined && isPlaceholder(pgPassword)) problems.push("PGPASSWORD is a placeholder");
  if (amqpUrl !== undefined) {
    const user = urlUser(amqpUrl);
    if (user === "guest") problems.push("AMQP_URL uses RabbitMQ's default guest account: give Tether a user of its own (deploy/rabbitmq/README.md)");
    else if (placeholderPassword(amqpUrl)) problems.push("AMQP_URL carries a placeholder password");
  }
  return problems;
}

/**
 * Throws the list of problems (production mode), or logs them as warnings when
 * `TETHER_ALLOW_INSECURE=1` says this is a development setup on purpose.
 */
export function refuseUnsafeStart(config: SafetyConfig, log: Pick<Logger, "warn">): void {
  const { problems, allowInsecure } = config.safety;
  if (problems.length === 0) return;
  if (allowInsecure) {
    for (const problem of problems) log.warn({ problem }, "TETHER_ALLOW_INSECURE=1: starting despite an unsafe production setting");
    return;
  }
  throw new Error(
    [
      "refusing to start in production mode (DATABASE_URL or AMQP_URL is set):",
      ...problems.map((p) => `  - ${p}`),
      "Fix these, or set TETHER_ALLOW_INSECURE=1 on a development machine.",
    ].join("\n"),
  );
}

function placeholderPassword(url: string): boolean {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password !== "" && isPlaceholder(password);
  } catch {
    return false; // a malformed URL fails later with the driver's own message
  }
}

function urlUser(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).username) || undefined;
  } catch {
    return undefined;
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}
