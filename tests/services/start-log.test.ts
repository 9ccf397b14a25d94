/**
 * The start log names every dependency Tether uses, and none of their passwords: DATABASE_URL,
 * AMQP_URL and MQTT_URL may all carry one.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDevPki } from "../../src/pki/dev-pki.js";
import { captureLogger } from "../helpers/auth.js";
import { type RunningMosquitto, startMosquitto, writeCrl } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { startTestStack, type TestStack } from "../helpers/stack.js";

const DB_PASSWORD = "db-Pa55word-in-url";
const MQTT_PASSWORD = "mqtt-Pa55word-in-url";
const AMQP_URL = process.env.TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

let dir: string;
let broker: RunningMosquitto;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let s: TestStack;
const capture = captureLogger();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-startlog-"));
  const certsDir = path.join(dir, "certs");
  await ensureDevPki(certsDir);
  await writeCrl(certsDir, []);
  broker = await startMosquitto({ certsDir });
  db = await freshDatabase("tether_startlog");
  // The test server trusts local connections: the password is carried, not checked.
  const dbUrl = new URL(db.url);
  dbUrl.password = DB_PASSWORD;
  const mqttUrl = new URL(broker.url);
  mqttUrl.username = "tether";
  mqttUrl.password = MQTT_PASSWORD; // Mosquitto takes the identity from the certificate
  s = await startTestStack(
    {
      DATABASE_URL: dbUrl.toString(),
      MQTT_URL: mqttUrl.toString(),
      AMQP_URL,
      TETHER_AMQP_PREFIX: `startlog${process.pid}`,
      TETHER_CERTS_DIR: certsDir,
      // The local RabbitMQ's guest account: the start refusal would stop here; its warnings are logged (and checked) too.
      TETHER_ALLOW_INSECURE: "1",
    },
    { log: capture.log },
  );
});
afterAll(async () => {
  await s?.cleanup();
  await broker?.stop();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe("the start log with PostgreSQL, RabbitMQ and Mosquitto", () => {
  it("names the dependencies without their passwords", async () => {
    const text = capture.text();
    expect(text).toContain("tether ready");
    expect(text).toContain("mqtt bridge consuming uplink");
    expect(text).not.toContain(DB_PASSWORD);
    expect(text).not.toContain(MQTT_PASSWORD);
    expect(text).not.toMatch(/:\/\/[^/\s"@]*:[^/\s"@*]+@/); // user:password@ in any URL, other than user:***@
  });

  it("creates no data folder when the database is external (the working directory may be read-only)", async () => {
    await expect(stat(path.join(s.dir, "data"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
