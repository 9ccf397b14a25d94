import type { Client } from "aedes";
import { Aedes } from "aedes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBrokerPresence } from "../../src/link/broker-presence.js";

/** The embedded broker's notes on presence messages, without sockets: aedes itself and fake clients. */
describe("broker presence notes", () => {
  let aedes: Aedes;
  beforeAll(async () => {
    aedes = await Aedes.createBroker();
  });
  afterAll(() => new Promise<void>((r) => aedes.close(() => r())));

  const client = (id: string, port = 40000, closed = false) =>
    ({ id, closed, conn: { remoteAddress: "::ffff:192.0.2.9", remotePort: port } }) as unknown as Client & { closed: boolean };
  const deviceOf = (c: Client) => (c.id.startsWith("svc") ? undefined : c.id);

  it("labels a will by why the broker closed the session, the device's own offline as clean, and keeps the address", () => {
    const p = createBrokerPresence(aedes, deviceOf, 60_000);
    const live = client("d1");
    p.noteOwnPresence(live, "d1", "online");
    aedes.emit("keepaliveTimeout", live);
    const closed = client("d1", 40000, true);
    p.closing(closed, "certificate_revoked");
    p.closing(closed, "server_shutdown"); // the first reason wins: the revocation caused the close
    p.noteOwnPresence(closed, "d1", "offline");
    expect(p.take("d1", true)).toEqual({ remoteAddress: "192.0.2.9:40000" });
    expect(p.take("d1", false)).toEqual({ reason: "certificate_revoked", remoteAddress: "192.0.2.9:40000" });
    expect(p.take("d1", false)).toBeUndefined(); // a retained re-read gets no note

    p.noteOwnPresence(live, "d1", "offline");
    expect(p.take("d1", false)).toMatchObject({ reason: "clean" });
    const dead = client("d1", 40001, true);
    p.noteOwnPresence(dead, "d1", "offline");
    expect(p.take("d1", false)).toMatchObject({ reason: "connection_lost" });
  });

  it("takes notes in order and skips one whose message never came (a different direction)", () => {
    const p = createBrokerPresence(aedes, deviceOf, 60_000);
    p.noteOwnPresence(client("d2"), "d2", "online");
    p.noteOwnPresence(client("d2", 1, true), "d2", "offline");
    p.noteOwnPresence(client("d2", 2), "d2", "online");
    // The first online was lost on the way; the will arrives first.
    expect(p.take("d2", false)).toMatchObject({ reason: "connection_lost", remoteAddress: "192.0.2.9:1" });
    expect(p.take("d2", true)).toEqual({ remoteAddress: "192.0.2.9:2" });
  });

  it("forwards a device's keepalives at most once per interval, and never a service's", () => {
    const p = createBrokerPresence(aedes, deviceOf, 60_000);
    const alive: string[] = [];
    aedes.emit("ping", {}, client("d3")); // before Tether consumes uplink: nowhere to go
    p.attach({ alive: (id) => alive.push(id), offline: () => {} });
    for (let i = 0; i < 5; i++) aedes.emit("ping", {}, client("d3"));
    aedes.emit("ping", {}, client("svc-bridge"));
    expect(alive).toEqual(["d3"]);
  });

  it("tells Tether of a session that ended without any offline (DISCONNECT without goodbye, no will), and not of one that said it", () => {
    const p = createBrokerPresence(aedes, deviceOf, 60_000);
    const offline: Array<[string, string | undefined]> = [];
    p.attach({ alive: () => {}, offline: (id, note) => offline.push([id, note.reason]) });
    const polite = Object.assign(client("d4"), { _disconnected: true });
    p.noteOwnPresence(polite, "d4", "online");
    aedes.emit("clientDisconnect", polite);
    const dropped = client("d5");
    aedes.emit("clientDisconnect", dropped);
    const sdk = client("d6");
    p.noteOwnPresence(sdk, "d6", "offline:clean");
    aedes.emit("clientDisconnect", sdk);
    const withWill = client("d7", 1, true);
    p.noteOwnPresence(withWill, "d7", "offline");
    aedes.emit("clientDisconnect", withWill);
    aedes.emit("clientDisconnect", client("svc-bridge"));
    expect(offline).toEqual([
      ["d4", "clean"],
      ["d5", "connection_lost"],
    ]);
  });
});
