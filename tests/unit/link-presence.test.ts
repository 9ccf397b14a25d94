import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { type Device, DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { type PresenceLink, startLinkPresence } from "../../src/core/devices/link-presence.js";
import { eventually } from "../helpers/devices.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const clock = { now: () => new Date("2026-01-01T00:00:00Z") };

function fakeLink(connected: boolean) {
  const handlers: Array<(up: boolean) => void> = [];
  const link: PresenceLink & { resyncs: number; up: boolean; emit(up: boolean): void } = {
    resyncs: 0,
    up: connected,
    connected: () => link.up,
    onLinkChange: (h) => void handlers.push(h),
    resyncPresence: async () => void link.resyncs++,
    emit(up) {
      link.up = up;
      for (const h of handlers) h(up);
    },
  };
  return link;
}

describe("presence when the broker link is lost", () => {
  it("marks online devices offline, announces each, and has the other connected replicas re-read presence", async () => {
    const online = new Set(["a", "b"]);
    const devices = {
      async setAllOffline() {
        const changed = [...online].map((id) => create(DeviceSchema, { name: `devices/${id}`, connectivity: { online: false } }));
        online.clear();
        return changed;
      },
    };
    const deviceFeed = createMemoryFeed<Device>();
    const resyncFeed = createMemoryFeed<string>(); // the event bus every replica shares
    const announced: string[] = [];
    deviceFeed.subscribe((d) => announced.push(d.name));
    const [linkA, linkB, linkC] = [fakeLink(true), fakeLink(true), fakeLink(false)];
    const stops = [
      startLinkPresence({ link: linkA, devices, deviceFeed, resyncFeed, replica: "A", clock, log: silent }),
      startLinkPresence({ link: linkB, devices, deviceFeed, resyncFeed, replica: "B", clock, log: silent }),
      startLinkPresence({ link: linkC, devices, deviceFeed, resyncFeed, replica: "C", clock, log: silent }),
    ];

    linkA.emit(true); // a reconnect asks for the retained presence again, and marks nothing
    await eventually(async () => linkA.resyncs === 1);
    expect(announced).toEqual([]);

    linkA.emit(false);
    await eventually(async () => announced.length === 2);
    expect(announced.sort()).toEqual(["devices/a", "devices/b"]);
    // B is still connected: it re-reads the retained presence; A (cut off) and C (down too) do not.
    await eventually(async () => linkB.resyncs === 1);
    expect([linkA.resyncs, linkC.resyncs]).toEqual([1, 0]);

    // Nothing was online any more: no announcement, no resync request.
    linkB.emit(false);
    await new Promise((r) => setTimeout(r, 10));
    expect(announced.length).toBe(2);
    expect([linkA.resyncs, linkC.resyncs]).toEqual([1, 0]);
    for (const stop of stops) stop();
  });
});
