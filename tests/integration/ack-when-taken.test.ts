import net from "node:net";
import { Aedes } from "aedes";
import mqtt, { type MqttClient } from "mqtt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ackWhenTaken } from "../../src/link/ack-when-taken.js";

// A plain (no TLS) aedes on loopback: what matters here is when the subscriber's PUBACK reaches it.
let broker: Aedes;
let server: net.Server;
let url: string;
let acked: string[];
const clients: MqttClient[] = [];

beforeEach(async () => {
  broker = await Aedes.createBroker();
  acked = [];
  broker.on("ack", (packet) => {
    if (packet && "payload" in packet) acked.push(packet.payload.toString());
  });
  server = net.createServer((socket) => broker.handle(socket));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await new Promise<void>((r) => broker.close(() => r()));
  server.close();
});

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
const tick = (ms = 100) => new Promise((r) => setTimeout(r, ms));

// A kept session (clean: false): aedes then remembers what it sent, and names it in its "ack" event.
async function subscriber(take: (topic: string, payload: Buffer) => Promise<void>) {
  const c = mqtt.connect(url, { clientId: "bridge", clean: false, protocolVersion: 4, reconnectPeriod: 0 });
  clients.push(c);
  ackWhenTaken(c, take);
  await new Promise((r) => c.once("connect", r));
  await c.subscribeAsync("up/#", { qos: 1 });
  return c;
}
async function publisher() {
  const c = await mqtt.connectAsync(url, { clientId: "device", protocolVersion: 4 });
  clients.push(c);
  return c;
}

describe("ackWhenTaken: the PUBACK waits until the message is taken", () => {
  it("holds each PUBACK until taken, sends them in arrival order, and keeps reading meanwhile", async () => {
    const pending = new Map<string, ReturnType<typeof deferred>>();
    await subscriber(async (_t, payload) => {
      const d = deferred();
      pending.set(payload.toString(), d);
      return d.promise;
    });
    const dev = await publisher();
    for (const m of ["m1", "m2", "m3"]) await dev.publishAsync("up/a", m, { qos: 1 });
    await tick();
    expect([...pending.keys()]).toEqual(["m1", "m2", "m3"]); // all read although none is taken
    expect(acked).toEqual([]);

    pending.get("m2")!.resolve();
    await tick();
    expect(acked).toEqual([]); // m1 first: PUBACKs go out in arrival order
    pending.get("m1")!.resolve();
    await tick();
    expect(acked).toEqual(["m1", "m2"]);
    pending.get("m3")!.resolve();
    await tick();
    expect(acked).toEqual(["m1", "m2", "m3"]);
  });

  it("never acknowledges a message that was not taken: a kept session gets it again", async () => {
    const seen: string[] = [];
    let refuse = true;
    const bridge = await subscriber(async (_t, payload) => {
      seen.push(payload.toString());
      if (refuse) throw new Error("intake away");
    });
    const dev = await publisher();
    await dev.publishAsync("up/a", "m1", { qos: 1 });
    await tick();
    expect(seen).toEqual(["m1"]);
    expect(acked).toEqual([]);

    // The bridge comes back on its kept session: the broker redelivers the unacknowledged message.
    refuse = false;
    await bridge.endAsync(true);
    const again = mqtt.connect(url, { clientId: "bridge", clean: false, protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(again);
    ackWhenTaken(again, async (_t, payload) => void seen.push(payload.toString()));
    await tick(300);
    expect(seen).toEqual(["m1", "m1"]);
    expect(acked).toEqual(["m1"]);
  });
});
