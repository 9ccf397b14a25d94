import { isIP } from "node:net";
import path from "node:path";
import { redactUrl } from "./log.js";
import { productionProblems } from "./production-safety.js";

/** The fully-resolved configuration. Every field has a default that works in embedded mode. */
export interface TetherConfig {
  api: {
    /** Interface the API binds to. @default "127.0.0.1" (set 0.0.0.0 to accept remote clients) */
    host: string;
    /** API port (gRPC, gRPC-Web, Connect). 0 picks a free port. @default 8443 */
    port: number;
    /** Largest request message, bytes. @default 4 MiB */
    readMaxBytes: number;
    /**
     * Peers allowed to open an API connection with a PROXY protocol header (v1 or v2) naming the
     * real client (`TETHER_TRUSTED_PROXIES`: comma-separated IP addresses or CIDR ranges, such as
     * the HAProxy in front). A header from any other peer is never read: its bytes reach the TLS
     * handshake, which fails. @default [] (no proxy: every peer's own address is the client's)
     */
    trustedProxies: string[];
    /**
     * HTTP/2 streams (calls) one connection may have open at once (`TETHER_HTTP2_MAX_CONCURRENT_STREAMS`),
     * announced in the server's SETTINGS; Node's default is unlimited. @default 100
     */
    maxConcurrentStreams: number;
    /**
     * Streaming calls (WatchDevices, WatchTasks, WatchJob, StreamTelemetry) one principal (user,
     * device, service) may have open at once across all its connections and tokens
     * (`TETHER_MAX_STREAMS_PER_PRINCIPAL`); the next gets RESOURCE_EXHAUSTED. Per replica. @default 32
     */
    maxStreamsPerPrincipal: number;
    /**
     * `Strict-Transport-Security: max-age=…` on every API response, s (`TETHER_HSTS_MAX_AGE_S`);
     * 0 sends none (e.g. while trying a certificate). @default 31536000 (one year)
     */
    hstsMaxAgeS: number;
    /**
     * What a JSON request (Connect, gRPC-Web/gRPC with `+json`) with a field the message does not
     * have gets. `reject`: INVALID_ARGUMENT naming the field, so a typo (`requestID` for
     * `requestId`) cannot silently drop an idempotency key or a filter. `ignore`: the field is
     * dropped (connect-es's default), for JSON clients built against a newer contract than some
     * replica serves, e.g. during a rolling upgrade. Binary protobuf always keeps unknown fields.
     * @default "reject"
     */
    jsonUnknownFields: "reject" | "ignore";
  };
  mqtt: {
    /** Embedded broker interface. @default same as api.host */
    host: string;
    /** Embedded broker port (MQTT over TLS). 0 picks a free port. @default 8883 */
    port: number;
    /** Largest uplink payload accepted, bytes. @default 256 KiB */
    maxPayloadBytes: number;
    /** Per-device uplink rate limit, messages per second (`TETHER_UPLINK_RATE_PER_S`); 0 = no limit. @default 100 */
    uplinkRatePerS: number;
    /** Messages a quiet device may send at once above the rate (`TETHER_UPLINK_BURST`). @default 500 */
    uplinkBurst: number;
  };
  /**
   * The device link to an external MQTT broker (Mosquitto). With `url` set the embedded broker is
   * not started and the bridge connects there instead.
   */
  mqttLink: {
    /** `mqtts://host:port` of the external broker (`MQTT_URL`); unset = the embedded broker. */
    url?: string;
    /** PEM files for the bridge's TLS (`MQTT_CA`, `MQTT_CERT`, `MQTT_KEY`). Unset: the CA in `certsDir` and a `tether` service certificate issued from it at start. */
    caFile?: string;
    certFile?: string;
    keyFile?: string;
    /** Shared-subscription group: replicas in one group split the uplink (`MQTT_SHARED_GROUP`). @default "tether" */
    sharedGroup: string;
    /**
     * The bridge's MQTT keepalive, seconds (`TETHER_MQTT_KEEPALIVE_S`): a broker silent for 1.5
     * times this is given up, and devices are reported offline until it is back. @default 30
     */
    keepaliveS: number;
    /**
     * How long the broker keeps the bridge's session after a lost connection, queueing its uplink
     * (`TETHER_MQTT_SESSION_EXPIRY_S`); 0 = a clean session. Worth it with a stable `clientId`
     * (see the README: a crashed replica's kept session strands its share of uplink). @default 0
     */
    sessionExpiryS: number;
    /** The bridge's MQTT client id (`MQTT_CLIENT_ID`): stable per replica to resume its session after a restart. @default tether-{hostname}-{pid} */
    clientId?: string;
  };
  /** The plain-HTTP operations port: `/metrics`, `/healthz`, `/readyz`. */
  ops: {
    /** Interface. @default same as api.host */
    host: string;
    /** Port; 0 picks a free one; undefined (`TETHER_METRICS_PORT=off`) serves nothing. @default 9464 */
    port?: number;
    /** How often dependencies (database, broker link) are probed for health, ms. @default 2000 */
    probeIntervalMs: number;
    /** Calls slower than this are logged with their request id, ms. @default 2000 */
    slowCallMs: number;
  };
  tasks: {
    /** How often timers (expiry, execution timeouts, resends) are checked, ms. @default 1000 */
    sweepIntervalMs: number;
    /** A sent task not acknowledged within this is sent again while the device is online, ms. @default 10000 */
    ackTimeoutMs: number;
    /** CreateTask calls being stored at once before new ones get RESOURCE_EXHAUSTED. @default 512 */
    maxCreatesInFlight: number;
  };
  alarms: {
    /** How often the presence sweep (`online` alarms) and the escalation timer run, ms. @default 10000 */
    sweepMs: number;
  };
  jobs: {
    /** How often the job runner steps active jobs (rollout, abort, completion), ms. @default 1000 */
    tickMs: number;
    /** Targets claimed and turned into tasks per transaction. @default 1000 */
    batchSize: number;
    /** How often a continuous job looks for newly matching devices, ms. @default 5000 */
    rescanMs: number;
  };
  firmware: {
    /**
     * Largest firmware image accepted, bytes (TETHER_FIRMWARE_MAX_BYTES): the upload chunk that
     * would cross it is refused. @default 67108864 (64 MiB)
     */
    maxBytes: number;
  };
  webhooks: {
    /**
     * Development only: accept `http://` webhook URLs and hosts that resolve to loopback or
     * link-local addresses (TETHER_WEBHOOK_ALLOW_HTTP=1). @default false
     */
    allowHttp: boolean;
    /** One request's timeout, ms. @default 10000 */
    timeoutMs: number;
    /** Requests in flight per subscription (per replica). @default 8 */
    concurrency: number;
    /** Delay before the 2nd try, ms; doubles per try, with jitter. @default 10000 */
    backoffBaseMs: number;
    /** Longest delay between tries, ms. @default 3600000 */
    backoffMaxMs: number;
    /** Tries before a delivery is DEAD. @default 12 */
    maxAttempts: number;
    /** A delivery not delivered after this long is DEAD, ms. @default 86400000 (24 h) */
    maxAgeMs: number;
    /** Failures in a row that open a subscription's circuit breaker. @default 5 */
    breakerFailures: number;
    /** How long an open breaker waits before one probe, ms (doubles while probes fail, up to 10 min). @default 30000 */
    breakerCooldownMs: number;
    /** How often the relay looks for new events and due deliveries, ms. @default 100 */
    pollMs: number;
    /** How long DELIVERED deliveries are kept (ListWebhookDeliveries), ms. @default 604800000 (7 days) */
    retentionMs: number;
    /** PEM file of extra CAs trusted for webhook endpoints, besides Node's roots (TETHER_WEBHOOK_CA_FILE). */
    caFile?: string;
  };
  database: {
    /** PostgreSQL URL; unset runs the embedded PGlite in `dataDir/pg`. */
    url?: string;
    /** Pool size against PostgreSQL. @default 10 (the embedded database always uses 1) */
    poolSize: number;
    /** Count SQL statements (benchmarks set it; no environment variable: see DatabaseOptions.countStatements). */
    countStatements?: boolean;
    /** The embedded database's shared_buffers, MiB (see DatabaseOptions.sharedBuffers). @default 16 */
    embeddedSharedBuffersMb: number;
    /** The embedded database compiled by V8's baseline compiler only (see DatabaseOptions.baselineWasm). @default true */
    embeddedBaselineWasm: boolean;
    /**
     * How often the embedded database's own autovacuum looks for a table to vacuum or analyze, s
     * (PGlite has no autovacuum; see store/embedded-vacuum.ts). 0 turns it off. @default 10
     */
    embeddedVacuumS: number;
  };
  audit: {
    /** Audit events older than this are deleted (hourly), days (`TETHER_AUDIT_RETENTION_DAYS`). @default 365 */
    retentionDays: number;
  };
  /** The MCP endpoint for AI assistants (`/mcp` on the API port; `tether mcp` reads the same limit). */
  mcp: {
    /**
     * MCP calls (tool calls and resource reads) one principal may make a minute, a minute's worth
     * at once after a quiet spell (`TETHER_MCP_RATE_PER_MIN`); the next is refused with
     * RESOURCE_EXHAUSTED and a retry time. Per replica; 0 = no limit. @default 120
     */
    ratePerMin: number;
  };
  telemetry: {
    /** Metrics streamed live but never stored. @default ["signal_strength", "rssi"] */
    ephemeral: string[];
    /** Partitions older than this are dropped, days. @default 30 */
    retentionDays: number;
    /** 1-minute rollups are kept this long, days (`TETHER_TELEMETRY_MINUTE_RETENTION_DAYS`). @default 90 */
    minuteRetentionDays: number;
    /** 1-hour rollups are kept this long, days (`TETHER_TELEMETRY_HOUR_RETENTION_DAYS`). @default 365 */
    hourRetentionDays: number;
    /** Samples older than this are refused, s. @default 7 days */
    maxAgeSeconds: number;
    /** Samples further in the future than this are refused, s. @default 300 */
    maxFutureSeconds: number;
    /**
     * Samples held in memory between intake and the database (slow or down). Past it, batches are
     * refused without a receipt and stay on their devices (the SDK resends): a bound on memory
     * (about 330 bytes a sample, so some 65 MiB when full). @default 200,000
     */
    queueCapacity: number;
    /**
     * Distinct metric names one device may send (`TETHER_TELEMETRY_MAX_METRICS_PER_DEVICE`):
     * samples of further names are refused and counted (`tether_telemetry_samples_rejected_total{reason="too_many_metrics"}`),
     * so a device cannot grow the stored series without bound. @default 200
     */
    maxMetricsPerDevice: number;
  };
  presence: {
    /**
     * How often a connected device's `last_seen_time` is refreshed by its heartbeats (the SDK's
     * `heartbeatIntervalMs` should not exceed it) and, on the embedded broker, its MQTT keepalives:
     * at most one write per device per interval (`TETHER_LIVENESS_INTERVAL_S`), s. @default 60
     */
    livenessIntervalS: number;
    /** An online device that sent nothing of its own for this long is `silent` (`TETHER_SILENT_AFTER_S`), s. @default 600 */
    silentAfterS: number;
    /** How often the silence sweep runs (`TETHER_SILENT_CHECK_S`), s. @default 30 */
    silentCheckS: number;
    /** Connectivity events are kept this long (`TETHER_CONNECTIVITY_RETENTION_DAYS`), days. @default 30 */
    retentionDays: number;
  };
  certificates: {
    /** Validity of device certificates when a request does not say, days. @default 365 */
    deviceValidityDays: number;
    /** Devices get a CertificateExpiring downlink when their newest certificate expires within this, days. @default 30 */
    expiryWarningDays: number;
    /** How often expiry warnings are checked, ms (each device is warned at most once a day). @default 3600000 */
    checkIntervalMs: number;
  };
  auth: {
    /** `iss` and `aud` of access tokens. @default "tether", "tether-api" */
    issuer: string;
    audience: string;
    /** Access token lifetime, s. @default 900 (15 minutes) */
    accessTokenTtlS: number;
    /** Refresh token lifetime, s (each use starts a new one). @default 30 days */
    refreshTokenTtlS: number;
    /** A new JWT signing key is made after this many seconds; old keys verify until their tokens expired. @default 7 days */
    signingKeyRotateS: number;
    /** Failed logins per user name and client address before the back-off starts. @default 5 */
    loginFreeAttempts: number;
    /** The first login back-off, s; it doubles with every further failure. @default 1 */
    loginBackoffBaseS: number;
    /** The longest login back-off, s. @default 900 */
    loginBackoffMaxS: number;
    /**
     * Failed logins per window per user name (`…_PER_USER`), and per client address over all
     * names (`…_PER_ADDRESS`), before RESOURCE_EXHAUSTED; an address that signed in as that user
     * before is exempt from both. @default 50, 20
     */
    loginMaxFailuresPerUser: number;
    loginMaxFailuresPerAddress: number;
    /** The window of those ceilings, and how long a back-off is remembered after it ends, s. @default 900 */
    loginWindowS: number;
    /** How long a user's resolved rights are reused, ms (shares and unshares apply at once regardless). @default 5000 */
    rightsCacheMs: number;
    /**
     * How often each replica re-reads the sessions ended on other replicas (Logout, refresh-token
     * reuse, password change), ms: the most an ended session's access token is still accepted
     * elsewhere when no AMQP_URL bus carries the news at once. @default 2000
     */
    sessionRevocationPollMs: number;
    /**
     * Seals JWT signing keys at rest; every replica needs the same value. Unset: the embedded mode
     * makes one in `dataDir/signing-key.secret`; with DATABASE_URL keys are stored unsealed (warned).
     */
    signingKeySecret?: string;
  };
  /** RabbitMQ (production event bus and durable uplink queues); see deploy/rabbitmq/. */
  amqp: {
    /** `AMQP_URL`; set, change feeds fan out through RabbitMQ and uplink goes through durable queues. */
    url?: string;
    /** Prefix of Tether's exchanges and queues (`{prefix}.events`, `{prefix}.uplink.{n}`, ...). @default "tether" */
    prefix: string;
    /** Uplink partition queues; a device always maps to the same one (per-device order). @default 4 */
    uplinkPartitions: number;
    /** `quorum` (replicated, delivery limit, RabbitMQ ≥ 3.8) or `classic`. @default "quorum" */
    queueType: "quorum" | "classic";
    /** Deliveries of an uplink message before it is dead-lettered to `{prefix}.uplink.dead`. @default 10 */
    deliveryLimit: number;
    /** Unacked uplink messages a replica holds per queue. @default 256 */
    prefetch: number;
  };
  /**
   * How devices reach Tether. `embedded`: the in-process MQTT broker. `amqp`: devices connect to
   * RabbitMQ's MQTT plugin and Tether talks AMQP to `amq.topic` (needs AMQP_URL; no embedded broker).
   * @default "embedded"
   */
  deviceLink: "embedded" | "amqp";
  /** Where embedded state lives. @default ./data */
  dataDir: string;
  /** Where the PKI lives (generated on first start). @default ./certs */
  certsDir: string;
  /** The built web console served at `/` on the API port (`npm run build:console`). @default ./console/dist */
  consoleDir: string;
  /** pino level. @default info */
  logLevel: string;
  /** `LOG_FORMAT`: `json` lines, a readable `pretty` line, or `auto` (pretty on a terminal, JSON otherwise). @default auto */
  logFormat: "auto" | "json" | "pretty";
  /** How long in-flight calls may take to finish on SIGTERM, ms. @default 10000 */
  shutdownGraceMs: number;
  /** The start refusal of production mode (`DATABASE_URL` or `AMQP_URL` set); see src/production-safety.ts. */
  safety: {
    /**
     * `TETHER_ALLOW_INSECURE=1`: start in production mode despite `problems`, each logged as a
     * warning. For development machines only. @default false
     */
    allowInsecure: boolean;
    /** Placeholder passwords, a missing or weak `TETHER_SIGNING_KEY_SECRET`, ...; empty in embedded mode. */
    problems: string[];
  };
}

/** Reads `TETHER_*`, `DATABASE_URL`, `AMQP_URL`, `MQTT_*` and `LOG_LEVEL`; throws a readable error on bad values. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Readonly<TetherConfig> {
  const databaseUrl = nonEmpty(env.DATABASE_URL);
  const host = env.TETHER_HOST ?? "127.0.0.1";
  const config: TetherConfig = {
    api: {
      host,
      port: int(env, "TETHER_PORT", 8443, 0, 65535),
      readMaxBytes: int(env, "TETHER_READ_MAX_BYTES", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
      trustedProxies: addressList(env, "TETHER_TRUSTED_PROXIES"),
      maxConcurrentStreams: int(env, "TETHER_HTTP2_MAX_CONCURRENT_STREAMS", 100, 1, 10_000),
      maxStreamsPerPrincipal: int(env, "TETHER_MAX_STREAMS_PER_PRINCIPAL", 32, 1, 100_000),
      hstsMaxAgeS: int(env, "TETHER_HSTS_MAX_AGE_S", 31_536_000, 0, 2 * 31_536_000),
      jsonUnknownFields: oneOf(env, "TETHER_JSON_UNKNOWN_FIELDS", "reject", ["reject", "ignore"]),
    },
    mqtt: {
      host: env.TETHER_MQTT_HOST ?? host,
      port: int(env, "TETHER_MQTT_PORT", 8883, 0, 65535),
      maxPayloadBytes: int(env, "TETHER_MQTT_MAX_PAYLOAD_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024),
      uplinkRatePerS: int(env, "TETHER_UPLINK_RATE_PER_S", 100, 0, 1_000_000),
      uplinkBurst: int(env, "TETHER_UPLINK_BURST", 500, 1, 10_000_000),
    },
    mqttLink: {
      url: mqttUrl(env.MQTT_URL),
      caFile: optionalPath(env.MQTT_CA, cwd),
      certFile: optionalPath(env.MQTT_CERT, cwd),
      keyFile: optionalPath(env.MQTT_KEY, cwd),
      sharedGroup: sharedGroup(env.MQTT_SHARED_GROUP),
      keepaliveS: int(env, "TETHER_MQTT_KEEPALIVE_S", 30, 1, 600),
      sessionExpiryS: int(env, "TETHER_MQTT_SESSION_EXPIRY_S", 0, 0, 86_400),
      clientId: nonEmpty(env.MQTT_CLIENT_ID),
    },
    ops: {
      host: env.TETHER_METRICS_HOST ?? host,
      port: nonEmpty(env.TETHER_METRICS_PORT) === "off" ? undefined : int(env, "TETHER_METRICS_PORT", 9464, 0, 65535),
      probeIntervalMs: int(env, "TETHER_HEALTH_PROBE_MS", 2000, 50, 600_000),
      slowCallMs: int(env, "TETHER_SLOW_CALL_MS", 2000, 1, 3_600_000),
    },
    tasks: {
      sweepIntervalMs: int(env, "TETHER_TASK_SWEEP_MS", 1000, 10, 60_000),
      ackTimeoutMs: int(env, "TETHER_TASK_ACK_TIMEOUT_MS", 10_000, 100, 3_600_000),
      maxCreatesInFlight: int(env, "TETHER_TASK_MAX_CREATES_IN_FLIGHT", 512, 1, 100_000),
    },
    alarms: {
      sweepMs: int(env, "TETHER_ALARM_SWEEP_MS", 10_000, 10, 600_000),
    },
    jobs: {
      tickMs: int(env, "TETHER_JOB_TICK_MS", 1000, 10, 60_000),
      batchSize: int(env, "TETHER_JOB_BATCH", 1000, 1, 2000),
      rescanMs: int(env, "TETHER_JOB_RESCAN_MS", 5000, 10, 3_600_000),
    },
    firmware: {
      maxBytes: int(env, "TETHER_FIRMWARE_MAX_BYTES", 64 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    },
    webhooks: {
      allowHttp: flag(env, "TETHER_WEBHOOK_ALLOW_HTTP", false),
      timeoutMs: int(env, "TETHER_WEBHOOK_TIMEOUT_MS", 10_000, 100, 60_000),
      concurrency: int(env, "TETHER_WEBHOOK_CONCURRENCY", 8, 1, 256),
      backoffBaseMs: int(env, "TETHER_WEBHOOK_BACKOFF_BASE_MS", 10_000, 10, 3_600_000),
      backoffMaxMs: int(env, "TETHER_WEBHOOK_BACKOFF_MAX_MS", 3_600_000, 10, 86_400_000),
      maxAttempts: int(env, "TETHER_WEBHOOK_MAX_ATTEMPTS", 12, 1, 100),
      maxAgeMs: int(env, "TETHER_WEBHOOK_MAX_AGE_MS", 86_400_000, 1000, 30 * 86_400_000),
      breakerFailures: int(env, "TETHER_WEBHOOK_BREAKER_FAILURES", 5, 1, 1000),
      breakerCooldownMs: int(env, "TETHER_WEBHOOK_BREAKER_COOLDOWN_MS", 30_000, 10, 600_000),
      pollMs: int(env, "TETHER_WEBHOOK_POLL_MS", 100, 10, 60_000),
      retentionMs: int(env, "TETHER_WEBHOOK_RETENTION_MS", 7 * 86_400_000, 60_000, 365 * 86_400_000),
      caFile: env.TETHER_WEBHOOK_CA_FILE || undefined,
    },
    database: {
      url: databaseUrl,
      poolSize: int(env, "DATABASE_POOL_SIZE", 10, 1, 1000),
      embeddedSharedBuffersMb: int(env, "TETHER_PGLITE_SHARED_BUFFERS_MB", 16, 1, 1024),
      embeddedBaselineWasm: flag(env, "TETHER_PGLITE_BASELINE_WASM", true),
      embeddedVacuumS: int(env, "TETHER_PGLITE_VACUUM_S", 10, 0, 86_400),
    },
    audit: {
      retentionDays: int(env, "TETHER_AUDIT_RETENTION_DAYS", 365, 1, 36_500),
    },
    mcp: {
      ratePerMin: int(env, "TETHER_MCP_RATE_PER_MIN", 120, 0, 100_000),
    },
    telemetry: {
      ephemeral: (env.TETHER_TELEMETRY_EPHEMERAL ?? "signal_strength,rssi")
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
      retentionDays: int(env, "TETHER_TELEMETRY_RETENTION_DAYS", 30, 1, 36_500),
      minuteRetentionDays: int(env, "TETHER_TELEMETRY_MINUTE_RETENTION_DAYS", 90, 1, 36_500),
      hourRetentionDays: int(env, "TETHER_TELEMETRY_HOUR_RETENTION_DAYS", 365, 1, 36_500),
      maxAgeSeconds: int(env, "TETHER_TELEMETRY_MAX_AGE_S", 7 * 86_400, 60, 366 * 86_400),
      maxFutureSeconds: int(env, "TETHER_TELEMETRY_MAX_FUTURE_S", 300, 0, 86_400),
      queueCapacity: int(env, "TETHER_TELEMETRY_QUEUE_CAPACITY", 200_000, 1000, 100_000_000),
      maxMetricsPerDevice: int(env, "TETHER_TELEMETRY_MAX_METRICS_PER_DEVICE", 200, 1, 100_000),
    },
    presence: {
      livenessIntervalS: int(env, "TETHER_LIVENESS_INTERVAL_S", 60, 1, 3600),
      silentAfterS: int(env, "TETHER_SILENT_AFTER_S", 600, 1, 30 * 86_400),
      silentCheckS: int(env, "TETHER_SILENT_CHECK_S", 30, 1, 3600),
      retentionDays: int(env, "TETHER_CONNECTIVITY_RETENTION_DAYS", 30, 1, 36_500),
    },
    certificates: {
      deviceValidityDays: int(env, "TETHER_DEVICE_CERT_VALIDITY_DAYS", 365, 1, 3650),
      expiryWarningDays: int(env, "TETHER_CERT_EXPIRY_WARNING_DAYS", 30, 0, 3650),
      checkIntervalMs: int(env, "TETHER_CERT_CHECK_MS", 3_600_000, 1000, 86_400_000),
    },
    auth: {
      issuer: env.TETHER_JWT_ISSUER ?? "tether",
      audience: env.TETHER_JWT_AUDIENCE ?? "tether-api",
      accessTokenTtlS: int(env, "TETHER_ACCESS_TOKEN_TTL_S", 900, 10, 86_400),
      refreshTokenTtlS: int(env, "TETHER_REFRESH_TOKEN_TTL_S", 30 * 86_400, 60, 366 * 86_400),
      signingKeyRotateS: int(env, "TETHER_SIGNING_KEY_ROTATE_S", 7 * 86_400, 3600, 366 * 86_400),
      loginFreeAttempts: int(env, "TETHER_LOGIN_FREE_ATTEMPTS", 5, 1, 1000),
      loginBackoffBaseS: int(env, "TETHER_LOGIN_BACKOFF_BASE_S", 1, 1, 3600),
      loginBackoffMaxS: int(env, "TETHER_LOGIN_BACKOFF_MAX_S", 900, 1, 86_400),
      loginMaxFailuresPerUser: int(env, "TETHER_LOGIN_MAX_FAILURES_PER_USER", 50, 1, 1_000_000),
      loginMaxFailuresPerAddress: int(env, "TETHER_LOGIN_MAX_FAILURES_PER_ADDRESS", 20, 1, 1_000_000),
      loginWindowS: int(env, "TETHER_LOGIN_WINDOW_S", 900, 1, 86_400),
      rightsCacheMs: int(env, "TETHER_RIGHTS_CACHE_MS", 5000, 0, 600_000),
      sessionRevocationPollMs: int(env, "TETHER_SESSION_REVOCATION_POLL_MS", 2000, 100, 60_000),
      signingKeySecret: nonEmpty(env.TETHER_SIGNING_KEY_SECRET),
    },
    amqp: {
      url: nonEmpty(env.AMQP_URL),
      prefix: pattern(env, "TETHER_AMQP_PREFIX", "tether", /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
      uplinkPartitions: int(env, "TETHER_AMQP_UPLINK_PARTITIONS", 4, 1, 256),
      queueType: oneOf(env, "TETHER_AMQP_QUEUE_TYPE", "quorum", ["quorum", "classic"]),
      deliveryLimit: int(env, "TETHER_AMQP_DELIVERY_LIMIT", 10, 1, 1000),
      prefetch: int(env, "TETHER_AMQP_PREFETCH", 256, 1, 65_535),
    },
    deviceLink: oneOf(env, "TETHER_DEVICE_LINK", "embedded", ["embedded", "amqp"]),
    dataDir: path.resolve(cwd, env.TETHER_DATA_DIR ?? "data"),
    certsDir: path.resolve(cwd, env.TETHER_CERTS_DIR ?? "certs"),
    consoleDir: path.resolve(cwd, env.TETHER_CONSOLE_DIR ?? "console/dist"),
    logLevel: oneOf(env, "LOG_LEVEL", "info", ["trace", "debug", "info", "warn", "error", "fatal", "silent"]),
    logFormat: oneOf(env, "LOG_FORMAT", "auto", ["auto", "json", "pretty"]),
    shutdownGraceMs: int(env, "TETHER_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    safety: { allowInsecure: flag(env, "TETHER_ALLOW_INSECURE", false), problems: productionProblems(env) },
  };
  // A session's last refresh token must outlive its access tokens: it is how a password change finds the session to end.
  if (config.auth.refreshTokenTtlS < config.auth.accessTokenTtlS) {
    throw new Error(
      `TETHER_REFRESH_TOKEN_TTL_S=${config.auth.refreshTokenTtlS} is shorter than TETHER_ACCESS_TOKEN_TTL_S=${config.auth.accessTokenTtlS}: a refresh token must live at least as long as an access token`,
    );
  }
  if (config.auth.loginBackoffMaxS < config.auth.loginBackoffBaseS) {
    throw new Error(`TETHER_LOGIN_BACKOFF_MAX_S=${config.auth.loginBackoffMaxS} is below TETHER_LOGIN_BACKOFF_BASE_S=${config.auth.loginBackoffBaseS}`);
  }
  if (config.deviceLink === "amqp" && !config.amqp.url)
    throw new Error("TETHER_DEVICE_LINK=amqp needs AMQP_URL (the RabbitMQ the devices' MQTT plugin runs on)");
  if (config.deviceLink === "amqp" && config.mqttLink.url) throw new Error("TETHER_DEVICE_LINK=amqp and MQTT_URL both name the device broker: set one of them");
  return deepFreeze(config);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function optionalPath(v: string | undefined, cwd: string): string | undefined {
  const p = nonEmpty(v);
  return p === undefined ? undefined : path.resolve(cwd, p);
}

/** The bridge authenticates with its certificate, so the external broker must speak TLS. */
function mqttUrl(v: string | undefined): string | undefined {
  const u = nonEmpty(v);
  if (u !== undefined && !/^(mqtts|ssl|wss):\/\/[^/]+/.test(u))
    throw new Error(`MQTT_URL=${redactUrl(u)}: expected mqtts://host:port (TLS with client certificates)`);
  return u;
}

/** A shared-subscription group name may not contain `/`, `+` or `#`. */
function sharedGroup(v: string | undefined): string {
  const g = nonEmpty(v) ?? "tether";
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(g)) throw new Error(`MQTT_SHARED_GROUP=${g}: expected 1-64 letters, digits, '_', '.' or '-'`);
  return g;
}

/** `TETHER_TRUSTED_PROXIES`: IPv4/IPv6 addresses and CIDR ranges, checked here so a typo fails the start. */
function addressList(env: NodeJS.ProcessEnv, name: string): string[] {
  const items = (env[name] ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  for (const item of items) {
    const [ip = "", prefix, extra] = item.split("/");
    const family = isIP(ip);
    const bits = family === 6 ? 128 : 32;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (family === 0 || !prefixOk || extra !== undefined)
      throw new Error(`${name}: "${item}" is not an IP address or CIDR range (e.g. 10.0.0.5, 172.31.244.0/29, fd00::/64)`);
  }
  return items;
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

function flag(env: NodeJS.ProcessEnv, name: string, def: boolean): boolean {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return def;
  if (raw === "1" || raw === "true") return true;
  if (raw === "0" || raw === "false") return false;
  throw new Error(`${name}=${raw}: expected 1 or 0`);
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, def: T, allowed: T[]): T {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return def;
  if (!allowed.includes(raw as T)) throw new Error(`${name}=${raw}: expected one of ${allowed.join(", ")}`);
  return raw as T;
}

function pattern(env: NodeJS.ProcessEnv, name: string, def: string, re: RegExp): string {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return def;
  if (!re.test(raw)) throw new Error(`${name}=${raw}: expected ${re.source}`);
  return raw;
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (v && typeof v === "object") deepFreeze(v);
  return Object.freeze(o);
}
