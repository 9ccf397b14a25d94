import path from "node:path";

/** The fully-resolved configuration. Every field has a default that works in embedded mode. */
export interface TetherConfig {
  api: {
    /** Interface the API binds to. @default "127.0.0.1" (set 0.0.0.0 to accept remote clients) */
    host: string;
    /** API port (gRPC, gRPC-Web, Connect). 0 picks a free port. @default 8443 */
    port: number;
    /** Largest request message, bytes. @default 4 MiB */
    readMaxBytes: number;
  };
  mqtt: {
    /** Embedded broker interface. @default same as api.host */
    host: string;
    /** Embedded broker port (MQTT over TLS). 0 picks a free port. @default 8883 */
    port: number;
    /** Largest uplink payload accepted, bytes. @default 256 KiB */
    maxPayloadBytes: number;
  };
  tasks: {
    /** How often timers (expiry, execution timeouts, resends) are checked, ms. @default 1000 */
    sweepIntervalMs: number;
    /** A sent task not acknowledged within this is sent again while the device is online, ms. @default 10000 */
    ackTimeoutMs: number;
    /** CreateTask calls being stored at once before new ones get RESOURCE_EXHAUSTED. @default 512 */
    maxCreatesInFlight: number;
  };
  database: {
    /** PostgreSQL URL; unset runs the embedded PGlite in `dataDir/pg`. */
    url?: string;
    /** Pool size against PostgreSQL. @default 10 (the embedded database always uses 1) */
    poolSize: number;
  };
  telemetry: {
    /** Metrics streamed live but never stored. @default ["signal_strength", "rssi"] */
    ephemeral: string[];
    /** Partitions older than this are dropped, days. @default 30 */
    retentionDays: number;
    /** Samples older than this are refused, s. @default 7 days */
    maxAgeSeconds: number;
    /** Samples further in the future than this are refused, s. @default 300 */
    maxFutureSeconds: number;
    /** Samples the embedded queue holds while the database is slow or down. @default 1,000,000 */
    queueCapacity: number;
  };
  /** Where embedded state lives. @default ./data */
  dataDir: string;
  /** Where the PKI lives (generated on first start). @default ./certs */
  certsDir: string;
  /** pino level. @default info */
  logLevel: string;
  /** How long in-flight calls may take to finish on SIGTERM, ms. @default 10000 */
  shutdownGraceMs: number;
}

/** Reads `TETHER_*`, `DATABASE_URL` and `LOG_LEVEL`; throws a readable error on bad values. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Readonly<TetherConfig> {
  const databaseUrl = nonEmpty(env.DATABASE_URL);
  const host = env.TETHER_HOST ?? "127.0.0.1";
  const config: TetherConfig = {
    api: {
      host,
      port: int(env, "TETHER_PORT", 8443, 0, 65535),
      readMaxBytes: int(env, "TETHER_READ_MAX_BYTES", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    },
    mqtt: {
      host: env.TETHER_MQTT_HOST ?? host,
      port: int(env, "TETHER_MQTT_PORT", 8883, 0, 65535),
      maxPayloadBytes: int(env, "TETHER_MQTT_MAX_PAYLOAD_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024),
    },
    tasks: {
      sweepIntervalMs: int(env, "TETHER_TASK_SWEEP_MS", 1000, 10, 60_000),
      ackTimeoutMs: int(env, "TETHER_TASK_ACK_TIMEOUT_MS", 10_000, 100, 3_600_000),
      maxCreatesInFlight: int(env, "TETHER_TASK_MAX_CREATES_IN_FLIGHT", 512, 1, 100_000),
    },
    database: {
      url: databaseUrl,
      poolSize: int(env, "DATABASE_POOL_SIZE", 10, 1, 1000),
    },
    telemetry: {
      ephemeral: (env.TETHER_TELEMETRY_EPHEMERAL ?? "signal_strength,rssi").split(",").map((x) => x.trim()).filter(Boolean),
      retentionDays: int(env, "TETHER_TELEMETRY_RETENTION_DAYS", 30, 1, 36_500),
      maxAgeSeconds: int(env, "TETHER_TELEMETRY_MAX_AGE_S", 7 * 86_400, 60, 366 * 86_400),
      maxFutureSeconds: int(env, "TETHER_TELEMETRY_MAX_FUTURE_S", 300, 0, 86_400),
      queueCapacity: int(env, "TETHER_TELEMETRY_QUEUE_CAPACITY", 1_000_000, 1000, 100_000_000),
    },
    dataDir: path.resolve(cwd, env.TETHER_DATA_DIR ?? "data"),
    certsDir: path.resolve(cwd, env.TETHER_CERTS_DIR ?? "certs"),
    logLevel: oneOf(env, "LOG_LEVEL", "info", ["trace", "debug", "info", "warn", "error", "fatal", "silent"]),
    shutdownGraceMs: int(env, "TETHER_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
  };
  return deepFreeze(config);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function int(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name}=${raw}: expected an integer between ${min} and ${max}`);
  }
  return n;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, def: T, allowed: T[]): T {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return def;
  if (!allowed.includes(raw as T)) throw new Error(`${name}=${raw}: expected one of ${allowed.join(", ")}`);
  return raw as T;
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (v && typeof v === "object") deepFreeze(v);
  return Object.freeze(o);
}
