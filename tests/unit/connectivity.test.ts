import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { ConnectivityEvent_Reason as Reason, ConnectivityEvent_Type as Type } from "../../gen/tether/v1/connectivity_pb.js";
import type { Device } from "../../gen/tether/v1/device_pb.js";
import { CreateDeviceRequestSchema, ListConnectivityEventsRequestSchema } from "../../gen/tether/v1/device_service_pb.js";
import { accessFromRights, FULL_ACCESS } from "../../src/core/access/access.js";
import { type ConnectivityService, createConnectivityService } from "../../src/core/connectivity/connectivity-service.js";
import { NotFoundError } from "../../src/core/errors.js";
import { PRODUCTS } from "../../src/core/products/index.js";
import { createConnectivityStore } from "../../src/store/connectivity-store.js";
import { type CoreHarness, wireCore } from "../helpers/core-harness.js";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const SILENT_AFTER_MS = 600_000;
const LIVENESS_MS = 60_000; // the uplink processor's default interval

/** Presence through the core with a fake clock: liveness, silence, and connectivity events with their reasons. */
describe("presence as a resource", () => {
  let core: CoreHarness;
  let connectivity: ConnectivityService;
  const published: Device[] = [];
  beforeAll(async () => {
    core = await wireCore();
    core.deviceFeed.subscribe((d) => void published.push(d));
    connectivity = createConnectivityService({
      devices: core.stores.devices,
      events: createConnectivityStore(core.sql),
      deviceFeed: core.deviceFeed,
      clock: core.clock,
      log: quiet,
      silentAfterMs: SILENT_AFTER_MS,
      retentionMs: 7 * 86_400_000,
    });
  });
  afterAll(() => core?.close());

  const product = PRODUCTS[0]!;
  const register = (id: string, owner = "") =>
    core.devices.createDevice(
      FULL_ACCESS,
      create(CreateDeviceRequestSchema, { deviceId: id, device: { owner, kind: { case: product.case, value: {} } as Device["kind"] } }),
    );
  const get = (id: string) => core.devices.getDevice(FULL_ACCESS, `devices/${id}`);
  const seen = async (id: string) => timestampDate((await get(id)).connectivity!.lastSeenTime!).toISOString();
  const events = async (id: string, pageSize = 100, pageToken = "") =>
    connectivity.listConnectivityEvents(FULL_ACCESS, create(ListConnectivityEventsRequestSchema, { parent: `devices/${id}`, pageSize, pageToken }));
  const presence = (deviceId: string, online: boolean, extra: { reason?: "keepalive_timeout" | "clean"; remoteAddress?: string } = {}) =>
    core.uplink.process({ kind: "presence", deviceId, online, ...extra });
  const heartbeat = (deviceId: string) =>
    core.uplink.process({ kind: "uplink", deviceId, uplink: create(UplinkSchema, { body: { case: "heartbeat", value: {} } }) });
  const telemetry = (deviceId: string) =>
    core.uplink.process({ kind: "uplink", deviceId, uplink: create(UplinkSchema, { messageId: "t", body: { case: "telemetry", value: { samples: [] } } }) });

  it("keeps a quiet connected device fresh: keepalives and heartbeats move last_seen_time once per interval, not last_uplink_time", async () => {
    await register("quiet-1");
    await presence("quiet-1", true);
    const connectedAt = await seen("quiet-1");
    for (let minute = 1; minute <= 5; minute++) {
      core.clock.advance(LIVENESS_MS);
      await core.uplink.process(
        minute % 2
          ? { kind: "alive", deviceId: "quiet-1" }
          : { kind: "uplink", deviceId: "quiet-1", uplink: create(UplinkSchema, { body: { case: "heartbeat", value: {} } }) },
      );
    }
    const fresh = await seen("quiet-1");
    expect(fresh).toBe(core.clock.now().toISOString());
    // Within the interval a keepalive writes nothing.
    core.clock.advance(LIVENESS_MS / 2);
    await core.uplink.process({ kind: "alive", deviceId: "quiet-1" });
    expect(await seen("quiet-1")).toBe(fresh);
    const device = await get("quiet-1");
    expect(device.connectivity?.lastUplinkTime).toBeUndefined();
    expect(connectedAt < fresh).toBe(true);
  });

  it("reports connected-but-silent separately from disconnected, live on the device feed, until the device speaks", async () => {
    await register("silent-1");
    await presence("silent-1", true);
    await telemetry("silent-1");
    core.clock.advance(SILENT_AFTER_MS - 1000);
    await connectivity.sweepSilence(); // other tests' devices may turn silent here
    expect((await get("silent-1")).connectivity?.silent).toBe(false);
    await heartbeat("silent-1"); // alive, but says nothing of its own
    core.clock.advance(2000);
    published.length = 0;
    await connectivity.sweepSilence();
    const silent = await get("silent-1");
    expect(silent.connectivity).toMatchObject({ online: true, silent: true });
    expect(published.filter((d) => d.name === "devices/silent-1").map((d) => d.connectivity?.silent)).toEqual([true]);

    published.length = 0;
    await telemetry("silent-1");
    expect((await get("silent-1")).connectivity).toMatchObject({ online: true, silent: false });
    expect(published.map((d) => [d.name, d.connectivity?.silent])).toEqual([["devices/silent-1", false]]);

    // Disconnected is not silent.
    core.clock.advance(SILENT_AFTER_MS * 2);
    await presence("silent-1", false);
    await connectivity.sweepSilence();
    expect((await get("silent-1")).connectivity).toMatchObject({ online: false, silent: false });
  });

  it("records each connect and disconnect once, with its reason and address, newest first, and shows the latest on the device", async () => {
    await register("ev-1");
    await presence("ev-1", true, { remoteAddress: "203.0.113.7:50412" });
    await presence("ev-1", true); // heard again (a second replica, a retained re-read): not an event
    core.clock.advance(1000);
    await presence("ev-1", false, { reason: "keepalive_timeout", remoteAddress: "203.0.113.7:50412" });
    await presence("ev-1", false); // the will heard again
    core.clock.advance(1000);
    await presence("ev-1", true);
    await presence("ev-1", false, { reason: "clean" });
    await presence("ev-1", true);
    await presence("ev-1", false); // a last will on an external broker says no more than "lost"

    const all = (await events("ev-1")).connectivityEvents;
    expect(all.map((e) => [e.type, e.reason])).toEqual([
      [Type.DISCONNECTED, Reason.CONNECTION_LOST],
      [Type.CONNECTED, Reason.CONNECTED],
      [Type.DISCONNECTED, Reason.CLEAN],
      [Type.CONNECTED, Reason.CONNECTED],
      [Type.DISCONNECTED, Reason.KEEPALIVE_TIMEOUT],
      [Type.CONNECTED, Reason.CONNECTED],
    ]);
    expect(all.at(-1)?.remoteAddress).toBe("203.0.113.7:50412");
    expect(all[0]!.name).toMatch(/^devices\/ev-1\/connectivityEvents\/\d+$/);
    const device = await get("ev-1");
    expect(device.connectivity?.lastEvent).toEqual(all[0]);

    // Pages of two, stable, then the end.
    const seenNames: string[] = [];
    let token = "";
    do {
      const page = await events("ev-1", 2, token);
      seenNames.push(...page.connectivityEvents.map((e) => e.name));
      token = page.nextPageToken;
    } while (token);
    expect(seenNames).toEqual(all.map((e) => e.name));
  });

  it("tells a device that was only out of reach from one that reconnected: broker lost, then broker restored", async () => {
    await register("part-1");
    await presence("part-1", true);
    const changed = await core.stores.devices.setAllOffline(core.clock.now(), "broker_lost");
    expect(changed.map((d) => d.name)).toContain("devices/part-1");
    await presence("part-1", true); // the retained online re-read after the link is back
    await presence("part-1", false);
    await presence("part-1", true); // a real reconnect later
    const got = (await events("part-1")).connectivityEvents.map((e) => e.reason);
    expect(got).toEqual([Reason.CONNECTED, Reason.CONNECTION_LOST, Reason.BROKER_RESTORED, Reason.BROKER_LOST, Reason.CONNECTED]);
  });

  it("marks every online device offline when the embedded broker stops with Tether", async () => {
    await register("stop-1");
    await presence("stop-1", true);
    expect(await connectivity.allOffline("server_shutdown")).toBeGreaterThan(0);
    expect((await get("stop-1")).connectivity?.lastEvent).toMatchObject({ type: Type.DISCONNECTED, reason: Reason.SERVER_SHUTDOWN });
    expect(await connectivity.allOffline("server_shutdown")).toBe(0);
  });

  it("lists with GetDevice's rights: NOT_FOUND for a device the caller may not see, and a bad parent or token names the field", async () => {
    await register("own-1", "alice");
    await presence("own-1", true);
    const as = (user: string) => accessFromRights({ caller: { user, admin: false, groups: [] }, devices: new Map(), selectors: [] });
    const req = (parent: string, pageToken = "") => create(ListConnectivityEventsRequestSchema, { parent, pageToken });
    expect((await connectivity.listConnectivityEvents(as("alice"), req("devices/own-1"))).connectivityEvents).toHaveLength(1);
    await expect(connectivity.listConnectivityEvents(as("mallory"), req("devices/own-1"))).rejects.toBeInstanceOf(NotFoundError);
    await expect(connectivity.listConnectivityEvents(FULL_ACCESS, req("devices/nobody"))).rejects.toBeInstanceOf(NotFoundError);
    await expect(connectivity.listConnectivityEvents(FULL_ACCESS, req("own-1"))).rejects.toThrow(/parent/);
    const other = (await events("ev-1", 1)).nextPageToken;
    await expect(connectivity.listConnectivityEvents(FULL_ACCESS, req("devices/own-1", other))).rejects.toThrow(/page_token/);
  });

  it("deletes events past retention and keeps the device's latest", async () => {
    core.clock.advance(8 * 86_400_000);
    expect(await connectivity.expire()).toBeGreaterThan(0);
    expect((await events("ev-1")).connectivityEvents).toEqual([]);
    expect((await get("ev-1")).connectivity?.lastEvent?.reason).toBe(Reason.CONNECTION_LOST);
  });
});
