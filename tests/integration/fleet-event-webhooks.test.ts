import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fromJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Alarm_State, AlarmSeverity } from "../../gen/tether/v1/alarm_pb.js";
import { ConnectivityEvent_Reason as Reason, ConnectivityEvent_Type as Type } from "../../gen/tether/v1/connectivity_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { type Event, EventSchema } from "../../gen/tether/v1/event_pb.js";
import { EventTrigger_Comparison } from "../../gen/tether/v1/rule_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { WebhookService } from "../../gen/tether/v1/webhook_service_pb.js";
import { connectDevice } from "../../src/device/tether-device.js";
import { type DevPki, ensureDevPki } from "../../src/pki/dev-pki.js";
import { deviceCredentials, eventually } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";
import { type Receiver, startReceiver } from "../helpers/webhook-receiver.js";

// Presence and alarms reach webhooks through the same outbox as tasks and devices: a device that
// connects and goes away is two device.connectivity events with their reasons, and an offline
// alarm is one alarm.raised and one alarm.cleared per episode, signed like every delivery.

let s: TestStack;
let pki: DevPki;
let pkiDir: string;
let receiver: Receiver;
beforeAll(async () => {
  pkiDir = await mkdtemp(path.join(tmpdir(), "tether-fleet-events-pki-"));
  pki = await ensureDevPki(pkiDir);
  s = await startTestStack({
    TETHER_CERTS_DIR: pkiDir,
    TETHER_WEBHOOK_CA_FILE: path.join(pkiDir, "ca.crt"),
    TETHER_WEBHOOK_ALLOW_HTTP: "1",
    TETHER_WEBHOOK_POLL_MS: "20",
    TETHER_ALARM_SWEEP_MS: "100",
  });
  receiver = await startReceiver({ cert: pki.server.certPem, key: pki.server.keyPem });
}, 60_000);
afterAll(async () => {
  await receiver?.close();
  await s?.cleanup();
  await rm(pkiDir, { recursive: true, force: true });
});

const eventsOf = (type: string, device: string): Event[] =>
  receiver.received
    .filter((r) => r.type === type && r.answer === 200)
    .map((r) => fromJson(EventSchema, JSON.parse(r.body.toString("utf8"))))
    .filter((e) => e.device === device);

describe("fleet events on webhooks", () => {
  it("delivers connects and disconnects with their reasons, and an alarm's raise and clear once each", async () => {
    const hooks = connectClient(s, WebhookService, "connect");
    const w = await hooks.createWebhook({
      webhookId: "fleet",
      webhook: { url: receiver.url, eventTypes: ["device.connectivity", "alarm.raised", "alarm.cleared"], deviceFilter: 'labels.site = "north"' },
    });
    receiver.secrets.push(w.secret);
    const devices = connectClient(s, DeviceService, "connect");
    await devices.createDevice({ deviceId: "north-led", device: { labels: { site: "north" }, kind: { case: "led", value: {} } } });
    await devices.createDevice({ deviceId: "south-led", device: { labels: { site: "south" }, kind: { case: "led", value: {} } } });
    // Offline (never seen) from the start: the sweep raises at once, as for_duration is 0.
    await connectClient(s, RuleService, "connect").createRule({
      ruleId: "north-offline",
      rule: {
        trigger: { case: "eventTrigger", value: { metric: "online", comparison: EventTrigger_Comparison.EQ, threshold: 0 } },
        target: { case: "device", value: "devices/north-led" },
        alarm: { severity: AlarmSeverity.CRITICAL },
      },
    });
    const raised = await eventually(async () => eventsOf("alarm.raised", "devices/north-led")[0], 10_000, "alarm.raised delivered");
    expect(raised.payload.case).toBe("alarm");
    expect(raised.payload.value).toMatchObject({ state: Alarm_State.ACTIVE, severity: AlarmSeverity.CRITICAL, rule: "rules/north-offline" });

    const north = await connectDevice({ ...(await deviceCredentials(s, "north-led")), handler: async () => ({}) });
    const south = await connectDevice({ ...(await deviceCredentials(s, "south-led")), handler: async () => ({}) });
    const connected = await eventually(async () => eventsOf("device.connectivity", "devices/north-led")[0], 10_000, "connected delivered");
    expect(connected.payload.case === "connectivity" && connected.payload.value).toMatchObject({ type: Type.CONNECTED, reason: Reason.CONNECTED });
    const cleared = await eventually(async () => eventsOf("alarm.cleared", "devices/north-led")[0], 10_000, "alarm.cleared delivered");
    expect(cleared.payload.value).toMatchObject({ state: Alarm_State.CLEARED });

    await north.close();
    const gone = await eventually(
      async () =>
        eventsOf("device.connectivity", "devices/north-led").find((e) => e.payload.case === "connectivity" && e.payload.value.type === Type.DISCONNECTED),
      10_000,
      "disconnected delivered",
    );
    expect(gone.payload.value).toMatchObject({ reason: Reason.CLEAN });
    await south.close();

    // Every request verified; one raise and one clear for the one episode so far (the device
    // has been offline again for less than the next sweep may have noticed: at most one more raise).
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    expect(eventsOf("alarm.cleared", "devices/north-led")).toHaveLength(1);
    expect(eventsOf("alarm.raised", "devices/north-led").length).toBeLessThanOrEqual(2);
    expect(new Set(eventsOf("alarm.raised", "devices/north-led").map((e) => e.id)).size).toBe(eventsOf("alarm.raised", "devices/north-led").length);
    // The filter held: nothing about the south site.
    expect(receiver.received.map((r) => fromJson(EventSchema, JSON.parse(r.body.toString("utf8"))).device)).not.toContain("devices/south-led");
  }, 60_000);
});
