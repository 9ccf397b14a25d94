import { readFileSync } from "node:fs";
import path from "node:path";
import { create, type DescMessage, toBinary } from "@bufbuild/protobuf";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { type Downlink, DownlinkSchema, file_tether_device_v1_downlink } from "../../gen/tether/device/v1/downlink_pb.js";
import { file_tether_device_v1_gateway_service } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { file_tether_device_v1_provisioning, ProvisioningRequestSchema, ProvisioningResponseSchema } from "../../gen/tether/device/v1/provisioning_pb.js";
import { file_tether_device_v1_uplink, UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { OPTIONS_FILE, renderAll, ROOT, TABLE_FILE } from "../../scripts/device-bounds.js";
import { answerProvisioning } from "../../src/core/certificates/mqtt-provisioning.js";
import { createDeviceCertificates } from "../../src/core/certificates/device-certificates.js";
import { createCounters } from "../../src/core/counters.js";
import { assertWithinBounds, boundOf, boundViolations, truncateUtf8, utf8Length } from "../../src/core/device-bounds.js";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { cancelTask, taskRequest } from "../../src/core/tasks/downlink.js";
import type { TaskRecord } from "../../src/core/tasks/task-record.js";
import { createUplinkReceipts } from "../../src/core/uplink/receipts.js";
import { DEVICE_BOUNDS, MAX_ENVELOPE_BYTES } from "../../src/protocol/device-bounds.js";

const log = pino({ level: "silent" });

/** Every message of the device contract and every message it carries (tether.v1 products, well-known types). */
function contractMessages(): DescMessage[] {
  const seen = new Map<string, DescMessage>();
  const visit = (m: DescMessage) => {
    if (seen.has(m.typeName)) return;
    seen.set(m.typeName, m);
    for (const f of m.fields) {
      if (f.message) visit(f.message);
      if (f.fieldKind === "map" && f.mapKind === "message") visit(f.message);
    }
  };
  for (const file of [
    file_tether_device_v1_downlink,
    file_tether_device_v1_uplink,
    file_tether_device_v1_provisioning,
    file_tether_device_v1_gateway_service,
  ]) {
    for (const m of file.messages) visit(m);
  }
  return [...seen.values()];
}

/** A seeded PRNG (mulberry32): the property tests are reproducible, and a failure names its seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  // 1-, 2-, 3- and 4-byte characters, and the odd lone surrogate a JS string can hold.
  const alphabet = ["a", "Z", "0", "-", "é", "ß", "€", "中", "😀", "𝄞", "\ud800"];
  const text = (maxChars: number) => Array.from({ length: int(maxChars + 1) }, () => alphabet[int(alphabet.length)]).join("");
  return { next, int, text };
}

describe("the device contract's bounds", () => {
  it("states a bound for every string, bytes, repeated field and map the contract carries", () => {
    const unbounded: string[] = [];
    for (const m of contractMessages()) {
      for (const f of m.fields) {
        const needs = f.fieldKind === "list" || f.fieldKind === "map" || (f.fieldKind === "scalar" && (f.scalar === 9 || f.scalar === 12)); // STRING, BYTES
        if (needs && !boundOf(f)) unbounded.push(`${m.typeName}.${f.name}`);
      }
    }
    expect(unbounded).toEqual([]);
    // …and nothing in the table names a field that no longer exists.
    const names = new Set(contractMessages().flatMap((m) => m.fields.map((f) => `${m.typeName}.${f.name}`)));
    expect(Object.keys(DEVICE_BOUNDS).filter((n) => !names.has(n))).toEqual([]);
  });

  it("the proto comments' `Bounds:` lines are all readable, and the committed options file and table are generated from them", () => {
    const { options, table, problems } = renderAll();
    expect(problems).toEqual([]);
    expect(readFileSync(path.join(ROOT, OPTIONS_FILE), "utf8")).toBe(options);
    expect(readFileSync(path.join(ROOT, TABLE_FILE), "utf8")).toBe(table);
    expect(options).toContain("* fallback_type:FT_STATIC"); // a new unbounded field fails a C build
  });

  it("counts UTF-8 bytes exactly and truncates without splitting a character", () => {
    const r = prng(26);
    for (let i = 0; i < 2000; i++) {
      const s = r.text(40);
      expect(utf8Length(s), JSON.stringify(s)).toBe(Buffer.byteLength(s, "utf8"));
      const max = r.int(60);
      const t = truncateUtf8(s, max);
      expect(Buffer.byteLength(t, "utf8")).toBeLessThanOrEqual(max);
      expect(s.startsWith(t)).toBe(true);
      expect(t.length === s.length || Buffer.byteLength(s.slice(0, t.length + (s.codePointAt(t.length)! > 0xffff ? 2 : 1)), "utf8") > max).toBe(true);
    }
  });

  it("refuses uplink over a bound with the field path and the bound", () => {
    const cases: Array<{ name: string; uplink: Parameters<typeof create<typeof UplinkSchema>>[1]; field: string }> = [
      { name: "message_id", uplink: { messageId: "m".repeat(37) }, field: "message_id" },
      {
        name: "multi-byte progress text",
        uplink: { body: { case: "progress", value: { taskId: crypto.randomUUID(), message: "€".repeat(86) } } },
        field: "progress.message",
      },
      { name: "firmware version", uplink: { body: { case: "hello", value: { firmwareVersion: "1".repeat(65) } } }, field: "hello.firmware_version" },
      {
        name: "too many tags",
        uplink: {
          body: { case: "telemetry", value: { samples: [{ metric: "t", tags: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }] } },
        },
        field: "telemetry.samples[0].tags",
      },
      {
        name: "a long tag value",
        uplink: { body: { case: "telemetry", value: { samples: [{ metric: "t" }, { metric: "t", tags: { k: "v".repeat(257) } }] } } },
        field: 'telemetry.samples[1].tags["k"]',
      },
      {
        name: "a batch over 10000 samples",
        uplink: { body: { case: "telemetry", value: { samples: Array.from({ length: 10_001 }, () => ({ metric: "t" })) } } },
        field: "telemetry.samples",
      },
      {
        name: "failure details",
        uplink: { body: { case: "result", value: { taskId: "t", outcome: { case: "failed", value: { details: { ["k".repeat(65)]: "v" } } } } } },
        field: `result.failed.details["${"k".repeat(65)}"] (key)`,
      },
      { name: "a CSR", uplink: { body: { case: "certificateRenewal", value: { requestId: "r", csr: "x".repeat(16_385) } } }, field: "certificate_renewal.csr" },
    ];
    for (const c of cases) {
      const v = boundViolations(UplinkSchema, create(UplinkSchema, c.uplink));
      expect(v[0], c.name).toMatchObject({
        field: c.field,
        description: expect.stringMatching(/^must (be at most \d+ bytes|have at most \d+ (items|entries))/),
      });
    }
    // Exactly at the bounds: nothing to say.
    const atBounds = create(UplinkSchema, {
      messageId: "m".repeat(36),
      body: {
        case: "telemetry",
        value: {
          samples: [{ metric: "m".repeat(64), tags: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`${i}`.padEnd(64, "k"), "€".repeat(85)])) }],
        },
      },
    });
    expect(boundViolations(UplinkSchema, atBounds)).toEqual([]);
  });

  it("property: an uplink is refused exactly when one of its strings exceeds its bound in UTF-8 bytes", () => {
    const r = prng(7);
    for (let i = 0; i < 500; i++) {
      const messageId = r.text(20);
      const message = r.text(140);
      const code = r.text(70);
      const up = create(UplinkSchema, {
        messageId,
        body:
          r.next() < 0.5
            ? { case: "progress", value: { taskId: "t", message } }
            : { case: "result", value: { taskId: "t", outcome: { case: "failed", value: { code } } } },
      });
      const text = up.body.case === "progress" ? message : code;
      const over = Buffer.byteLength(messageId) > 36 || Buffer.byteLength(text) > (up.body.case === "progress" ? 256 : 128);
      expect(boundViolations(UplinkSchema, up).length > 0, `${JSON.stringify(up.body.case)} ${JSON.stringify(text)}`).toBe(over);
    }
  });

  it("property: no downlink Tether builds exceeds a bound, whatever the input", async () => {
    const r = prng(2026);
    const built: Downlink[] = [];
    const record = { send: async (_id: string, m: Downlink) => void built.push(m) };
    const now = new Date();
    for (let i = 0; i < 300; i++) {
      const deviceId = `d${"x".repeat(r.int(62))}`;
      const t = {
        id: crypto.randomUUID(),
        deviceId,
        sequence: r.int(1e9),
        attempt: 1 + r.int(10),
        expireTime: now,
        command: { $typeName: "tether.v1.Command", kind: { case: undefined } },
        stateReason: `canceled: ${r.text(256)}`,
      } as unknown as TaskRecord;
      built.push(taskRequest(t, now), cancelTask(t, now));
    }
    // Receipts: any number of ids, any max_receipt_ids a device may send.
    for (let i = 0; i < 40; i++) {
      const receipts = createUplinkReceipts({ link: record, stored: async () => {}, clock: { now: () => now }, counters: createCounters(), log, lingerMs: 0 });
      const n = r.int(1500);
      for (let j = 0; j < n; j++) receipts.done("dev", r.next() < 0.9 ? crypto.randomUUID() : r.text(30), r.int(700));
      await receipts.drain();
    }
    // Certificate answers: the refusal text quotes the device's input.
    const certs = createDeviceCertificates({
      service: { renewForDevice: async () => Promise.reject(new InvalidArgumentError([{ field: "csr", description: r.text(2000) }])) } as never,
      certificates: {} as never,
      link: record,
      clock: { now: () => now },
      log,
      warningDays: 30,
    });
    for (let i = 0; i < 50; i++)
      await certs.renewalRequested("dev", { $typeName: "tether.device.v1.CertificateRenewalRequest", requestId: crypto.randomUUID(), csr: "" });

    expect(built.length).toBeGreaterThan(650);
    const over = built.flatMap((m) => boundViolations(DownlinkSchema, m).map((v) => `${m.body.case}: ${v.field} ${v.description}`));
    expect(over).toEqual([]);
    // The documented largest sizes hold for what was built (they are computed from the bounds).
    const snake = (c: string) => c.replace(/[A-Z]/g, (x) => `_${x.toLowerCase()}`) as keyof typeof MAX_ENVELOPE_BYTES.downlink;
    const oversize = built.filter((m) => toBinary(DownlinkSchema, m).length > MAX_ENVELOPE_BYTES.downlink[snake(m.body.case!)]);
    expect(oversize.map((m) => m.body.case)).toEqual([]);
    const receiptSizes = built.filter((m) => m.body.case === "receipt").map((m) => (m.body.case === "receipt" ? m.body.value.messageIds.length : 0));
    expect(Math.max(...receiptSizes)).toBeLessThanOrEqual(500);
  });

  it("receipts never carry more ids than the smallest max_receipt_ids among the messages they answer", async () => {
    const sent: Downlink[] = [];
    const receipts = createUplinkReceipts({
      link: { send: async (_id, m) => void sent.push(m) },
      stored: async () => {},
      clock: { now: () => new Date() },
      counters: createCounters(),
      log,
      lingerMs: 0,
    });
    for (let i = 0; i < 20; i++) receipts.done("dev", `m${i}`, i === 5 ? 4 : 0);
    receipts.done("dev", "x".repeat(37)); // over the id bound: no receipt can carry it
    await receipts.drain();
    const sizes = sent.map((m) => (m.body.case === "receipt" ? m.body.value.messageIds.length : -1));
    expect(sizes).toEqual([4, 4, 4, 4, 4]);
  });

  it("provisioning: a request over a bound is answered with the field; the answer itself fits", async () => {
    const service = {
      provisionDevice: async () => Promise.reject(new InvalidArgumentError([{ field: "serial_number", description: "€".repeat(2000) }])),
    } as never;
    const long = await answerProvisioning(service, "t", create(ProvisioningRequestSchema, { requestId: "r".repeat(200), serialNumber: "s" }), log);
    expect(long).toMatchObject({ requestId: "", error: expect.stringMatching(/^INVALID_ARGUMENT: request_id: must be at most 128 bytes/) });
    const refused = await answerProvisioning(service, "t", create(ProvisioningRequestSchema, { requestId: "r", serialNumber: "s" }), log);
    expect(boundViolations(ProvisioningResponseSchema, refused)).toEqual([]);
    expect(refused.error).toMatch(/^INVALID_ARGUMENT: serial_number: €/);
  });

  it("the link's last check refuses an over-bound downlink instead of sending it", () => {
    const bad = create(DownlinkSchema, { messageId: "x", body: { case: "cancel", value: { taskId: "t", reason: "r".repeat(257) } } });
    expect(() => assertWithinBounds(DownlinkSchema, bad)).toThrow(/cancel\.reason must be at most 256 bytes/);
  });
});
