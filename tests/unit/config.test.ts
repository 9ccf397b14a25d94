import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";

describe("loadConfig", () => {
  it("has defaults that run the embedded stack", () => {
    const c = loadConfig({}, "/srv/tether");
    expect(c.api).toEqual({
      host: "127.0.0.1",
      port: 8443,
      readMaxBytes: 4 * 1024 * 1024,
      trustedProxies: [],
      maxConcurrentStreams: 100,
      maxStreamsPerPrincipal: 32,
      hstsMaxAgeS: 31_536_000,
      jsonUnknownFields: "reject",
    });
    expect(c.mqtt).toEqual({ host: "127.0.0.1", port: 8883, maxPayloadBytes: 256 * 1024, uplinkRatePerS: 100, uplinkBurst: 500 });
    expect(c.tasks).toEqual({ sweepIntervalMs: 1000, ackTimeoutMs: 10_000, maxCreatesInFlight: 512 });
    expect(c.jobs).toEqual({ tickMs: 1000, batchSize: 1000, rescanMs: 5000 });
    expect(c.database.url).toBeUndefined();
    expect(c.certificates).toEqual({ deviceValidityDays: 365, expiryWarningDays: 30, checkIntervalMs: 3_600_000 });
    expect(c.dataDir).toBe("/srv/tether/data");
    expect(c.certsDir).toBe("/srv/tether/certs");
    expect(c.consoleDir).toBe("/srv/tether/console/dist");
    expect(Object.isFrozen(c.api)).toBe(true);
    expect(c.auth).toEqual({
      issuer: "tether",
      audience: "tether-api",
      accessTokenTtlS: 900,
      refreshTokenTtlS: 30 * 86_400,
      signingKeyRotateS: 7 * 86_400,
      loginFreeAttempts: 5,
      loginBackoffBaseS: 1,
      loginBackoffMaxS: 900,
      loginMaxFailuresPerUser: 50,
      loginMaxFailuresPerAddress: 20,
      loginWindowS: 900,
      rightsCacheMs: 5000,
      sessionRevocationPollMs: 2000,
      signingKeySecret: undefined,
    });
  });
  it("reads the exhaustion limits and HSTS", () => {
    const c = loadConfig({
      TETHER_HTTP2_MAX_CONCURRENT_STREAMS: "50",
      TETHER_MAX_STREAMS_PER_PRINCIPAL: "4",
      TETHER_HSTS_MAX_AGE_S: "0",
      TETHER_TELEMETRY_MAX_METRICS_PER_DEVICE: "10",
    });
    expect(c.api).toMatchObject({ maxConcurrentStreams: 50, maxStreamsPerPrincipal: 4, hstsMaxAgeS: 0 });
    expect(c.telemetry.maxMetricsPerDevice).toBe(10);
    expect(loadConfig({}).telemetry.maxMetricsPerDevice).toBe(200);
    expect(loadConfig({ TETHER_JSON_UNKNOWN_FIELDS: "ignore" }).api.jsonUnknownFields).toBe("ignore");
    expect(() => loadConfig({ TETHER_JSON_UNKNOWN_FIELDS: "drop" })).toThrow(/TETHER_JSON_UNKNOWN_FIELDS=drop: expected one of reject, ignore/);
    expect(() => loadConfig({ TETHER_HTTP2_MAX_CONCURRENT_STREAMS: "0" })).toThrow(
      /TETHER_HTTP2_MAX_CONCURRENT_STREAMS=0: expected an integer between 1 and 10000/,
    );
    expect(() => loadConfig({ TETHER_MAX_STREAMS_PER_PRINCIPAL: "many" })).toThrow(/TETHER_MAX_STREAMS_PER_PRINCIPAL=many/);
    expect(() => loadConfig({ TETHER_HSTS_MAX_AGE_S: "-1" })).toThrow(/TETHER_HSTS_MAX_AGE_S=-1/);
    expect(() => loadConfig({ TETHER_TELEMETRY_MAX_METRICS_PER_DEVICE: "0" })).toThrow(/TETHER_TELEMETRY_MAX_METRICS_PER_DEVICE=0/);
  });
  it("reads the auth settings", () => {
    const c = loadConfig({ TETHER_ACCESS_TOKEN_TTL_S: "300", TETHER_LOGIN_MAX_FAILURES_PER_USER: "3", TETHER_JWT_ISSUER: "https://tether.example" });
    expect(c.auth).toMatchObject({ accessTokenTtlS: 300, loginMaxFailuresPerUser: 3, issuer: "https://tether.example" });
    expect(() => loadConfig({ TETHER_ACCESS_TOKEN_TTL_S: "1" })).toThrow(/TETHER_ACCESS_TOKEN_TTL_S=1: expected an integer between 10 and 86400/);
  });
  it("reads the session revocation poll and refuses a refresh token shorter-lived than an access token", () => {
    expect(loadConfig({ TETHER_SESSION_REVOCATION_POLL_MS: "500" }).auth.sessionRevocationPollMs).toBe(500);
    expect(() => loadConfig({ TETHER_SESSION_REVOCATION_POLL_MS: "10" })).toThrow(
      /TETHER_SESSION_REVOCATION_POLL_MS=10: expected an integer between 100 and 60000/,
    );
    expect(() => loadConfig({ TETHER_ACCESS_TOKEN_TTL_S: "3600", TETHER_REFRESH_TOKEN_TTL_S: "600" })).toThrow(
      /TETHER_REFRESH_TOKEN_TTL_S=600 is shorter than TETHER_ACCESS_TOKEN_TTL_S=3600/,
    );
    expect(loadConfig({ TETHER_ACCESS_TOKEN_TTL_S: "600", TETHER_REFRESH_TOKEN_TTL_S: "600" }).auth.refreshTokenTtlS).toBe(600);
  });
  it("reads the login throttle and the trusted proxies, and refuses bad values at start", () => {
    const c = loadConfig({
      TETHER_LOGIN_FREE_ATTEMPTS: "3",
      TETHER_LOGIN_BACKOFF_BASE_S: "2",
      TETHER_LOGIN_BACKOFF_MAX_S: "60",
      TETHER_TRUSTED_PROXIES: " 10.0.0.5, 172.31.244.0/29 ,fd00::/64",
    });
    expect(c.auth).toMatchObject({ loginFreeAttempts: 3, loginBackoffBaseS: 2, loginBackoffMaxS: 60 });
    expect(c.api.trustedProxies).toEqual(["10.0.0.5", "172.31.244.0/29", "fd00::/64"]);
    expect(() => loadConfig({ TETHER_LOGIN_BACKOFF_BASE_S: "10", TETHER_LOGIN_BACKOFF_MAX_S: "5" })).toThrow(
      /TETHER_LOGIN_BACKOFF_MAX_S=5 is below TETHER_LOGIN_BACKOFF_BASE_S=10/,
    );
    expect(() => loadConfig({ TETHER_LOGIN_FREE_ATTEMPTS: "0" })).toThrow(/TETHER_LOGIN_FREE_ATTEMPTS=0: expected an integer between 1 and 1000/);
    for (const bad of ["haproxy", "10.0.0.300", "10.0.0.0/33", "fd00::/129", "10.0.0.0/8/1", "10.0.0.0/"]) {
      expect(() => loadConfig({ TETHER_TRUSTED_PROXIES: bad }), bad).toThrow(/TETHER_TRUSTED_PROXIES: ".*" is not an IP address or CIDR range/);
    }
  });
  it("switches to PostgreSQL with DATABASE_URL", () => {
    const c = loadConfig({ DATABASE_URL: "postgres://u@db/tether" });
    expect(c.database).toEqual({ url: "postgres://u@db/tether", poolSize: 10, embeddedSharedBuffersMb: 16, embeddedBaselineWasm: true, embeddedVacuumS: 10 });
  });
  it("sizes the embedded database for a small board, and reads its settings", () => {
    const c = loadConfig({ TETHER_PGLITE_SHARED_BUFFERS_MB: "64", TETHER_PGLITE_BASELINE_WASM: "0", TETHER_PGLITE_VACUUM_S: "0" });
    expect(c.database).toMatchObject({ url: undefined, embeddedSharedBuffersMb: 64, embeddedBaselineWasm: false, embeddedVacuumS: 0 });
    expect(() => loadConfig({ TETHER_PGLITE_VACUUM_S: "-1" })).toThrow(/TETHER_PGLITE_VACUUM_S=-1/);
    expect(() => loadConfig({ TETHER_PGLITE_SHARED_BUFFERS_MB: "0" })).toThrow(/TETHER_PGLITE_SHARED_BUFFERS_MB=0/);
    expect(() => loadConfig({ TETHER_PGLITE_BASELINE_WASM: "yes" })).toThrow(/TETHER_PGLITE_BASELINE_WASM=yes/);
    expect(loadConfig({}).telemetry.queueCapacity).toBe(200_000);
  });
  it("runs without RabbitMQ by default and switches the bus and device link with AMQP_URL", () => {
    const embedded = loadConfig({});
    expect(embedded.amqp).toEqual({ url: undefined, prefix: "tether", uplinkPartitions: 4, queueType: "quorum", deliveryLimit: 10, prefetch: 256 });
    expect(embedded.deviceLink).toBe("embedded");
    const prod = loadConfig({
      AMQP_URL: "amqp://tether:secret@mq:5672",
      TETHER_DEVICE_LINK: "amqp",
      TETHER_AMQP_PREFIX: "t1",
      TETHER_AMQP_UPLINK_PARTITIONS: "8",
      TETHER_AMQP_QUEUE_TYPE: "classic",
    });
    expect(prod.amqp).toMatchObject({ url: "amqp://tether:secret@mq:5672", prefix: "t1", uplinkPartitions: 8, queueType: "classic" });
    expect(prod.deviceLink).toBe("amqp");
    expect(() => loadConfig({ TETHER_DEVICE_LINK: "amqp" })).toThrow(/needs AMQP_URL/);
    expect(() => loadConfig({ TETHER_DEVICE_LINK: "carrier-pigeon" })).toThrow(/TETHER_DEVICE_LINK=carrier-pigeon/);
    expect(() => loadConfig({ TETHER_AMQP_PREFIX: "a b" })).toThrow(/TETHER_AMQP_PREFIX/);
    expect(() => loadConfig({ AMQP_URL: "amqp://mq", TETHER_DEVICE_LINK: "amqp", MQTT_URL: "mqtts://mosquitto:8883" })).toThrow(/set one of them/);
  });
  it("uses the embedded broker and serves operations on 9464 unless told otherwise", () => {
    const c = loadConfig({}, "/srv/tether");
    expect(c.mqttLink).toEqual({
      url: undefined,
      caFile: undefined,
      certFile: undefined,
      keyFile: undefined,
      sharedGroup: "tether",
      keepaliveS: 30,
      sessionExpiryS: 0,
      clientId: undefined,
    });
    expect(c.ops).toEqual({ host: "127.0.0.1", port: 9464, probeIntervalMs: 2000, slowCallMs: 2000 });
    expect(loadConfig({ TETHER_METRICS_PORT: "off" }).ops.port).toBeUndefined();
    expect(loadConfig({ TETHER_HOST: "0.0.0.0", TETHER_METRICS_PORT: "0" }).ops).toMatchObject({ host: "0.0.0.0", port: 0 });
  });
  it("switches the device link to an external broker with MQTT_URL", () => {
    const c = loadConfig(
      {
        MQTT_URL: "mqtts://mosquitto:8883",
        MQTT_CA: "tls/ca.pem",
        MQTT_CERT: "/tls/tether.crt",
        MQTT_KEY: "/tls/tether.key",
        MQTT_SHARED_GROUP: "eu-1",
        TETHER_MQTT_KEEPALIVE_S: "10",
        TETHER_MQTT_SESSION_EXPIRY_S: "300",
        MQTT_CLIENT_ID: "tether-eu-1-a",
      },
      "/srv/tether",
    );
    expect(c.mqttLink).toEqual({
      url: "mqtts://mosquitto:8883",
      caFile: "/srv/tether/tls/ca.pem",
      certFile: "/tls/tether.crt",
      keyFile: "/tls/tether.key",
      sharedGroup: "eu-1",
      keepaliveS: 10,
      sessionExpiryS: 300,
      clientId: "tether-eu-1-a",
    });
    expect(() => loadConfig({ MQTT_URL: "mqtt://mosquitto:1883" })).toThrow(/MQTT_URL=.*expected mqtts/);
    expect(() => loadConfig({ MQTT_SHARED_GROUP: "a/b" })).toThrow(/MQTT_SHARED_GROUP=a\/b/);
  });
  it("names the variable and the accepted range on bad input", () => {
    expect(() => loadConfig({ TETHER_PORT: "http" })).toThrow(/TETHER_PORT=http: expected an integer between 0 and 65535/);
    expect(() => loadConfig({ LOG_LEVEL: "loud" })).toThrow(/LOG_LEVEL=loud/);
    expect(() => loadConfig({ TETHER_DEVICE_CERT_VALIDITY_DAYS: "0" })).toThrow(/TETHER_DEVICE_CERT_VALIDITY_DAYS=0: expected an integer between 1 and 3650/);
  });
  it("reads TETHER_ALLOW_INSECURE and lists production problems", () => {
    expect(loadConfig({}).safety).toEqual({ allowInsecure: false, problems: [] });
    expect(loadConfig({ TETHER_ALLOW_INSECURE: "1" }).safety.allowInsecure).toBe(true);
    expect(loadConfig({ TETHER_ALLOW_INSECURE: "0" }).safety.allowInsecure).toBe(false);
    expect(() => loadConfig({ TETHER_ALLOW_INSECURE: "yes please" })).toThrow(/TETHER_ALLOW_INSECURE=yes please: expected 1 or 0/);
    expect(loadConfig({ DATABASE_URL: "postgres://u@db/tether" }).safety.problems).toEqual([expect.stringMatching(/TETHER_SIGNING_KEY_SECRET is not set/)]);
  });
});
