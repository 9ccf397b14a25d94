import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { describe, expect, it, vi } from "vitest";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { TaskSchema, Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { protobufCodec, sampleCodec } from "../../src/bus/amqp-feed.js";
import { decodeItem, encodeItem, partitionOf } from "../../src/bus/amqp-uplink.js";
import { createMemoryQueue } from "../../src/bus/memory-queue.js";
import type { UplinkItem } from "../../src/core/ports/uplink-intake.js";
import {
  downlinkTopic,
  metricTopic,
  presenceTopic,
  routingKeyToTopic,
  topicToRoutingKey,
  UPLINK_ROUTING_PATTERNS,
  uplinkJsonTopic,
  uplinkTopic,
} from "../../src/protocol/topics.js";
import { decodeDeviceMessage } from "../../src/link/uplink-decode.js";

describe("the topic scheme on amq.topic (RabbitMQ's MQTT plugin)", () => {
  it("maps every device topic to its routing key and back", () => {
    for (const topic of [
      uplinkTopic("d-1"),
      uplinkJsonTopic("d-1"),
      presenceTopic("d-1"),
      metricTopic("d-1", "temp"),
      metricTopic("d-1", "room.temp.max"),
      downlinkTopic("d-1"),
    ]) {
      expect(routingKeyToTopic(topicToRoutingKey(topic))).toBe(topic);
    }
    expect(topicToRoutingKey(downlinkTopic("d-1"))).toBe("tether.v1.devices.d-1.down");
    expect(routingKeyToTopic("other.v1.devices.d-1.up")).toBeUndefined();
    expect(routingKeyToTopic("tether.v1.devices.d-1")).toBeUndefined();
  });
  it("binds the uplink channels only", () => {
    expect(UPLINK_ROUTING_PATTERNS).toEqual([
      "tether.v1.devices.*.up",
      "tether.v1.devices.*.up.json",
      "tether.v1.devices.*.presence",
      "tether.v1.devices.*.metrics.#",
    ]);
  });
});

describe("decodeDeviceMessage (one codec for every transport)", () => {
  const up = create(UplinkSchema, { messageId: "m1", body: { case: "hello", value: { firmwareVersion: "1" } } });
  it("decodes binary and JSON uplink, presence and plain metrics", () => {
    expect(decodeDeviceMessage(uplinkTopic("d"), Buffer.from(toBinary(UplinkSchema, up)), 1024)).toMatchObject({ item: { kind: "uplink", deviceId: "d" } });
    expect(decodeDeviceMessage(uplinkJsonTopic("d"), Buffer.from(toJsonString(UplinkSchema, up)), 1024)).toMatchObject({
      item: { kind: "uplink", deviceId: "d" },
    });
    expect(decodeDeviceMessage(presenceTopic("d"), Buffer.from("offline"), 1024)).toEqual({ item: { kind: "presence", deviceId: "d", online: false } });
    // The SDK's goodbye: the one presence that carries its reason (a last will is plain `offline`).
    expect(decodeDeviceMessage(presenceTopic("d"), Buffer.from("offline:clean"), 1024)).toEqual({
      item: { kind: "presence", deviceId: "d", online: false, reason: "clean" },
    });
    expect(decodeDeviceMessage(metricTopic("d", "t"), Buffer.from("1.5"), 1024)).toEqual({ item: { kind: "metric", deviceId: "d", metric: "t", text: "1.5" } });
  });
  it("says why it drops", () => {
    expect(decodeDeviceMessage(downlinkTopic("d"), Buffer.from("x"), 1024)).toEqual({ drop: "bad_topic" });
    expect(decodeDeviceMessage("tether/v1/devices/D/up", Buffer.from("x"), 1024)).toEqual({ drop: "bad_topic" });
    expect(decodeDeviceMessage(uplinkTopic("d"), Buffer.alloc(2000), 1024)).toEqual({ drop: "oversized" });
    expect(decodeDeviceMessage(uplinkJsonTopic("d"), Buffer.from("{not json"), 1024)).toEqual({ drop: "malformed" });
    expect(decodeDeviceMessage(presenceTopic("d"), Buffer.from("maybe"), 1024)).toEqual({ drop: "malformed" });
    expect(decodeDeviceMessage(presenceTopic("d"), Buffer.from("offline:keepalive_timeout"), 1024)).toEqual({ drop: "malformed" });
  });
});

describe("uplink queue messages", () => {
  it("round-trip every item kind", () => {
    const items: UplinkItem[] = [
      { kind: "uplink", deviceId: "d", uplink: create(UplinkSchema, { messageId: "m", body: { case: "currentTaskQuery", value: {} } }) },
      { kind: "presence", deviceId: "d", online: true },
      { kind: "presence", deviceId: "d", online: false, reason: "keepalive_timeout", remoteAddress: "[2001:db8::1]:5000" },
      { kind: "metric", deviceId: "d", metric: "a.b", text: "42" },
      { kind: "alive", deviceId: "d" },
    ];
    for (const item of items) {
      const { content, type, headers } = encodeItem(item);
      expect(decodeItem({ content, properties: { type, headers } } as never)).toEqual(item);
    }
    expect(decodeItem({ content: Buffer.from("x"), properties: { type: "uplink", headers: {} } } as never)).toBeUndefined();
    // A reason header that names no reason is left out, not stored.
    const odd = { content: Buffer.from("offline"), properties: { type: "presence", headers: { "x-tether-device": "d", "x-tether-reason": "bogus" } } };
    expect(decodeItem(odd as never)).toEqual({ kind: "presence", deviceId: "d", online: false });
  });
  it("map a device to one stable partition and spread devices over all of them", () => {
    expect(partitionOf("kitchen-led", 4)).toBe(partitionOf("kitchen-led", 4));
    const used = new Set(Array.from({ length: 200 }, (_, i) => partitionOf(`dev-${i}`, 8)));
    expect(used.size).toBe(8);
  });
});

describe("feed codecs", () => {
  it("carry several protobuf messages in one AMQP message", () => {
    const codec = protobufCodec(TaskSchema);
    const tasks = [
      create(TaskSchema, { name: "devices/a/tasks/1", state: State.QUEUED }),
      create(TaskSchema, { name: "devices/a/tasks/2", state: State.SUCCEEDED }),
    ];
    expect(codec.decode(codec.encode(tasks)).map((t) => [t.name, t.state])).toEqual([
      ["devices/a/tasks/1", State.QUEUED],
      ["devices/a/tasks/2", State.SUCCEEDED],
    ]);
  });
  it("carry samples as JSON with their times", () => {
    const s = { deviceId: "d", metric: "m", value: 1.5, time: new Date("2026-01-02T03:04:05.678Z"), tags: { a: "b" } };
    expect(sampleCodec.decode(sampleCodec.encode([s]))).toEqual([s]);
  });
});

describe("the telemetry queue's commit barrier", () => {
  it("resolves committed() only once every earlier push is acked, whatever order batches settle in", async () => {
    const q = createMemoryQueue(1000);
    const sample = (v: number) => ({ deviceId: "d", metric: "m", value: v, time: new Date(v), tags: {} });
    await q.committed(); // nothing pushed: at once
    q.push([sample(1), sample(2)]);
    q.push([sample(3)]);
    let done = false;
    const barrier = q.committed().then(() => (done = true));
    const first = (await q.take(2, 10))!;
    const second = (await q.take(10, 10))!;
    second.ack();
    await Promise.resolve();
    expect(done).toBe(false);
    first.nack(); // the database failed: back in the queue, still not committed
    await Promise.resolve();
    expect(done).toBe(false);
    (await q.take(10, 10))!.ack();
    await barrier;
    expect(done).toBe(true);
    const earlier = q.committed(); // nothing unacked: resolves even though sample 4 comes later
    q.push([sample(4)]);
    let later = false;
    void q.committed().then(() => (later = true));
    await earlier;
    await Promise.resolve();
    expect(later).toBe(false);
    (await q.take(10, 10))!.ack();
    await vi.waitFor(() => expect(later).toBe(true));
  });
});
