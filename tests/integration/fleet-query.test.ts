import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fromJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { EventSchema } from "../../gen/tether/v1/event_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Grant_Role, ShareService } from "../../gen/tether/v1/share_service_pb.js";
import { ThermostatMode } from "../../gen/tether/v1/thermostat_pb.js";
import { WebhookService } from "../../gen/tether/v1/webhook_service_pb.js";
import { type DevPki, ensureDevPki } from "../../src/pki/dev-pki.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { deviceCredentials, eventually, startLedSim } from "../helpers/devices.js";
import { ThermostatSim } from "../../src/core/products/thermostat-sim.js";
import { startSimulator } from "../../src/sim/simulator.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";
import { type Receiver, startReceiver } from "../helpers/webhook-receiver.js";

// The fleet query through the API, as users run it: simulated devices over MQTT report state and
// presence, and ListDevices, CountDevices, jobs, shares and webhooks select them with one filter.

let s: TestStack;
let pki: DevPki;
let pkiDir: string;
let receiver: Receiver;
let vera: string;
const stops: Array<() => Promise<void>> = [];
const startTime = new Date();

const FLEET = [
  { id: "fq-led-a", kind: "led", labels: { site: "north" }, firmware: "1.9.3" },
  { id: "fq-led-b", kind: "led", labels: { site: "south" }, firmware: "1.10.0" },
  { id: "fq-led-c", kind: "led", labels: {}, firmware: "1.10.0-beta.2" },
  { id: "fq-cold", kind: "thermostat", labels: { site: "north" }, firmware: "2.0.0" },
  { id: "fq-warm", kind: "thermostat", labels: {}, firmware: "2.0.0" },
] as const;

beforeAll(async () => {
  pkiDir = await mkdtemp(path.join(tmpdir(), "tether-fleet-query-pki-"));
  pki = await ensureDevPki(pkiDir);
  s = await startTestStack({
    TETHER_CERTS_DIR: pkiDir,
    TETHER_WEBHOOK_CA_FILE: path.join(pkiDir, "ca.crt"),
    TETHER_WEBHOOK_ALLOW_HTTP: "1",
    TETHER_WEBHOOK_POLL_MS: "20",
  });
  receiver = await startReceiver({ cert: pki.server.certPem, key: pki.server.keyPem });
  vera = await userToken(s, "vera");
  for (const d of FLEET) {
    await devices().createDevice({
      deviceId: d.id,
      device: { labels: d.labels, firmwareVersion: d.firmware, kind: { case: d.kind, value: {} } as never },
    });
  }
  // The room stays where it starts: outside equals inside and nothing heats.
  // Each says its registered version in its Hello (which Tether records).
  const conn = async (id: string) => ({ ...(await deviceCredentials(s, id)), firmwareVersion: FLEET.find((d) => d.id === id)!.firmware });
  const cold = await startSimulator(new ThermostatSim({ roomCelsius: 15, outsideCelsius: 15, mode: ThermostatMode.OFF }), await conn("fq-cold"));
  const warm = await startSimulator(new ThermostatSim({ roomCelsius: 24, outsideCelsius: 24, mode: ThermostatMode.OFF }), await conn("fq-warm"));
  const led = await startLedSim(await conn("fq-led-a"));
  stops.push(
    () => cold.device.close(),
    () => warm.device.close(),
    () => led.device.close(),
  );
}, 90_000);
afterAll(async () => {
  for (const stop of stops) await stop();
  await receiver?.close();
  await s?.cleanup();
  await rm(pkiDir, { recursive: true, force: true });
});

const devices = () => connectClient(s, DeviceService, "connect");
const ids = async (filter: string) => (await devices().listDevices({ filter, pageSize: 100 })).devices.map((d) => d.name.slice("devices/".length)).sort();

describe("ListDevices with the fleet query", () => {
  it("combines terms with OR, NOT and parentheses", async () => {
    expect(await ids('labels.site = "north" OR labels.site = "south"')).toEqual(["fq-cold", "fq-led-a", "fq-led-b"]);
    expect(await ids("kind = led AND NOT labels.site:*")).toEqual(["fq-led-c"]);
    expect(await ids("(kind = thermostat AND labels.site = north) OR name = devices/fq-led-b")).toEqual(["fq-cold", "fq-led-b"]);
    expect(await ids("kind != led AND -labels.site:*")).toEqual(["fq-warm"]);
  });

  it("orders firmware versions by semantic versioning", async () => {
    expect(await ids('firmware_version < "1.10.0"')).toEqual(["fq-led-a", "fq-led-c"]);
    expect(await ids('firmware_version >= "1.10.0-beta.1" AND firmware_version < "2.0.0"')).toEqual(["fq-led-b", "fq-led-c"]);
  });

  it("selects by last_seen_time and by a thermostat's reported temperature", async () => {
    const since = `last_seen_time >= "${startTime.toISOString()}"`;
    await eventually(async () => (await ids(since)).length === 3, 20_000, "the three simulated devices seen");
    expect(await ids(since)).toEqual(["fq-cold", "fq-led-a", "fq-warm"]);
    expect(await ids(`NOT ${since}`)).toEqual(["fq-led-b", "fq-led-c"]);
    const cold = await eventually(async () => {
      const r = await ids("thermostat.reported.temperature_celsius < 18");
      return r.length > 0 && r;
    }, 20_000);
    expect(cold).toEqual(["fq-cold"]);
    await eventually(async () => (await ids("thermostat.reported.temperature_celsius > 20")).length === 1, 20_000, "the warm one reported");
    expect(await ids("thermostat.reported.temperature_celsius > 20 OR thermostat.reported.temperature_celsius < 18")).toEqual(["fq-cold", "fq-warm"]);
  });

  it("refuses a bad filter naming the term, its position and the field", async () => {
    const refusals: Array<[string, RegExp]> = [
      ["kind = led OR thermostat.reported.temprature < 18", /position 15: .*has no field "temprature"/],
      ["(kind = led", /position 1: "\(" is not closed/],
      ['firmware_version < "1.10"', /not a semantic version/],
    ];
    for (const [filter, re] of refusals) {
      const err = await devices()
        .listDevices({ filter })
        .then(() => undefined, ConnectError.from);
      expect(err?.code, filter).toBe(Code.InvalidArgument);
      expect(err?.rawMessage).toMatch(re);
      expect(err?.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("filter");
    }
  });
});

describe("CountDevices", () => {
  it("gives the fleet's firmware version distribution, newest first", async () => {
    const res = await devices().countDevices({ groupBy: "firmware_version", filter: 'name != "devices/none"' });
    const mine = res.groups.filter((g) => FLEET.some((d) => d.firmware === g.value));
    expect(mine.map((g) => [g.value, Number(g.count)])).toEqual([
      ["2.0.0", 2],
      ["1.10.0", 1],
      ["1.10.0-beta.2", 1],
      ["1.9.3", 1],
    ]);
    const kinds = await devices().countDevices({ filter: 'name = "devices/fq-cold" OR kind = led AND labels.site:*', groupBy: "kind" });
    expect(kinds.totalCount).toBe(3n);
    expect(kinds.groups.map((g) => [g.value, Number(g.count)])).toEqual([
      ["led", 2],
      ["thermostat", 1],
    ]);
    const bySite = await devices().countDevices({ filter: 'labels.site != "east" AND firmware_version:*', groupBy: "labels.site" });
    // Devices without the label come last.
    expect(bySite.groups.map((g) => [g.value, Number(g.count)])).toEqual([
      ["north", 2],
      ["south", 1],
      [undefined, 2],
    ]);
  });

  it("counts only the devices a viewer may see", async () => {
    const shares = connectClient(s, ShareService, "connect");
    await shares.createGrant({ grant: { principal: "users/vera", target: { case: "device", value: "devices/fq-led-b" }, role: Grant_Role.VIEWER } });
    await shares.createGrant({
      grant: { principal: "users/vera", target: { case: "selector", value: 'labels.site = "north" AND kind = "thermostat"' }, role: Grant_Role.VIEWER },
    });
    const asVera = bearerClient(s, DeviceService, vera);
    const res = await eventually(
      async () => {
        const r = await asVera.countDevices({ groupBy: "firmware_version" });
        return r.totalCount === 2n && r;
      },
      10_000,
      "vera's shares applied",
    );
    expect(res.groups.map((g) => [g.value, Number(g.count)])).toEqual([
      ["2.0.0", 1],
      ["1.10.0", 1],
    ]);
    expect((await asVera.countDevices({ filter: "kind = led OR kind = thermostat" })).totalCount).toBe(2n);
    const err = await asVera.countDevices({ groupBy: "colour" }).then(() => undefined, ConnectError.from);
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("group_by");
  });

  it("takes a share selector with OR, and refuses one on a reading", async () => {
    const shares = connectClient(s, ShareService, "connect");
    const err = await shares
      .createGrant({
        grant: { principal: "users/vera", target: { case: "selector", value: "thermostat.reported.temperature_celsius < 18" }, role: Grant_Role.VIEWER },
      })
      .then(() => undefined, ConnectError.from);
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.rawMessage).toMatch(/kind and labels/);
  });
});

describe("jobs and webhooks with the fleet query", () => {
  it("targets a job with an OR filter, only devices of the command's kind", async () => {
    const job = await connectClient(s, JobService, "connect").createJob({
      jobId: "fq-dim",
      job: {
        command: { kind: { case: "led", value: { action: { case: "setBrightness", value: 10 } } } },
        // fq-cold matches the filter but is a thermostat: a job's targets are of its command's kind.
        target: { case: "selector", value: { filter: 'labels.site = "north" OR firmware_version = "1.10.0"' } },
      },
    });
    expect(job.progress?.targetCount).toBe(2n);
    const targets = await connectClient(s, JobService, "connect").listJobExecutions({ parent: "jobs/fq-dim", pageSize: 10 });
    expect(targets.executions.map((e) => e.device).sort()).toEqual(["devices/fq-led-a", "devices/fq-led-b"]);
  });

  it("targets a selector rule by kind and a fleet query, and refuses a bad one on its field", async () => {
    const rules = connectClient(s, RuleService, "connect");
    const led = { kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: 30 } } } };
    await rules.createRule({
      ruleId: "fq-rule",
      rule: {
        trigger: { case: "oneShotTime", value: timestampFromDate(new Date(Date.now() + 1000)) },
        // No labels: the filter narrows the kind (fq-cold matches it but is a thermostat).
        target: { case: "selector", value: { kind: ProductKind.LED, filter: 'labels.site = "north" OR firmware_version = "1.10.0"' } },
        command: led,
      },
    });
    const run = await eventually(async () => (await rules.listRuleRuns({ parent: "rules/fq-rule", pageSize: 10 })).runs[0], 15_000, "the rule's run");
    expect(run.targets.map((t) => t.device).sort()).toEqual(["devices/fq-led-a", "devices/fq-led-b"]);
    expect((await rules.getRule({ name: "rules/fq-rule" })).target.value).toMatchObject({ filter: 'labels.site = "north" OR firmware_version = "1.10.0"' });
    const err = await rules
      .createRule({
        ruleId: "fq-bad",
        rule: {
          trigger: { case: "oneShotTime", value: timestampFromDate(new Date(Date.now() + 60_000)) },
          target: { case: "selector", value: { kind: ProductKind.LED, filter: "led.reported.brightnes > 3" } },
          command: led,
        },
      })
      .then(() => undefined, ConnectError.from);
    expect(err?.code).toBe(Code.InvalidArgument);
    const violation = err?.findDetails(BadRequestSchema)[0]?.fieldViolations[0];
    expect(violation?.field).toBe("rule.selector.filter");
    expect(violation?.description).toMatch(/position 1: .*has no field "brightnes"/);
  });

  it("routes webhook events through a device filter with OR", async () => {
    const w = await connectClient(s, WebhookService, "connect").createWebhook({
      webhookId: "fq-hook",
      webhook: { url: receiver.url, eventTypes: ["device.updated"], deviceFilter: 'labels.site = "south" OR firmware_version < "1.10.0"' },
    });
    receiver.secrets.push(w.secret);
    for (const d of FLEET.filter((x) => x.kind === "led")) {
      await devices().updateDevice({ device: { name: `devices/${d.id}`, displayName: `updated ${d.id}` }, updateMask: { paths: ["display_name"] } });
    }
    const delivered = () =>
      receiver.received
        .filter((r) => r.type === "device.updated" && r.answer === 200)
        .map((r) => fromJson(EventSchema, JSON.parse(r.body.toString("utf8"))).device)
        .sort();
    // led-a (1.9.3) and led-b (south) match; led-c (1.10.0-beta.2) is below 1.10.0 too. The
    // simulated led-a may also report state (another device.updated): count distinct devices.
    await eventually(async () => new Set(delivered()).size >= 3, 15_000, "three devices' deliveries");
    expect([...new Set(delivered())]).toEqual(["devices/fq-led-a", "devices/fq-led-b", "devices/fq-led-c"]);
    const ledB = () => delivered().filter((d) => d === "devices/fq-led-b").length;
    await devices().updateDevice({ device: { name: "devices/fq-warm", displayName: "not routed" }, updateMask: { paths: ["display_name"] } });
    await devices().updateDevice({ device: { name: "devices/fq-led-b", displayName: "again" }, updateMask: { paths: ["display_name"] } });
    // Events fan out in commit order: once led-b's second is in, fq-warm's was routed (nowhere).
    await eventually(async () => ledB() === 2, 15_000, "led-b's second delivery");
    expect(delivered()).not.toContain("devices/fq-warm");
    expect(delivered()).not.toContain("devices/fq-cold");
  });
});
