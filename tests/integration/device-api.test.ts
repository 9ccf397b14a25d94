import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { type Device, DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { LedMode } from "../../gen/tether/v1/led_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { connectClient, grpcJsClient, type Protocol, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack();
  // A device's owner must be an existing user.
  for (const userId of ["alice", "bob"]) await connectClient(s, UserService, "grpc").createUser({ userId });
});
afterAll(async () => {
  await s?.cleanup();
});

const led = (id: string, labels: Record<string, string> = {}) => ({
  deviceId: id,
  device: {
    displayName: `LED ${id}`,
    labels,
    kind: { case: "led" as const, value: { desired: { power: true, brightness: 40, mode: LedMode.SOLID, color: { red: 255, green: 128, blue: 0 } } } },
  },
});

/** Comparable form: protobuf JSON without the fields that differ between otherwise equal devices. */
const comparable = (d: Device) => {
  const j = toJson(DeviceSchema, d) as Record<string, unknown>;
  for (const k of ["name", "uid", "createTime", "updateTime", "etag", "displayName"]) delete j[k];
  return j;
};

/** The field paths of an INVALID_ARGUMENT error's BadRequest details. */
async function violations(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(Code.InvalidArgument);
  return (err as ConnectError).findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field));
}

describe("DeviceService over three protocols and grpc-js", () => {
  it("gives the same results from grpc-js, Connect, gRPC and gRPC-Web clients", async () => {
    const results: Device[] = [];
    const gjs = grpcJsClient(s, DeviceService);
    try {
      results.push(await gjs.unary("createDevice", led("proto-grpcjs", { via: "any" })));
      results.push(await gjs.unary("getDevice", { name: "devices/proto-grpcjs" }));
    } finally {
      gjs.close();
    }
    for (const protocol of ["connect", "grpc", "grpc-web"] as Protocol[]) {
      const c = connectClient(s, DeviceService, protocol);
      const created = await c.createDevice(led(`proto-${protocol}`, { via: "any" }));
      expect(created.name).toBe(`devices/proto-${protocol}`);
      results.push(created, await c.getDevice({ name: created.name }));
      // Every protocol sees the devices created through the others.
      const listed = await c.listDevices({ filter: 'labels.via = "any"' });
      expect(listed.devices.map((d) => d.name)).toContain("devices/proto-grpcjs");
    }
    const first = comparable(results[0]!);
    for (const r of results) expect(comparable(r)).toEqual(first);
    expect(first).toMatchObject({ labels: { via: "any" }, led: { desired: { power: true, brightness: 40, mode: "LED_MODE_SOLID" } } });
  });

  it("maps errors to the same gRPC status for grpc-js clients", async () => {
    const gjs = grpcJsClient(s, DeviceService);
    try {
      await expect(gjs.unary("getDevice", { name: "devices/missing" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
      await expect(gjs.unary("getDevice", { name: "nope" })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    } finally {
      gjs.close();
    }
  });
});

describe("authentication", () => {
  it("refuses a caller without a client certificate with UNAUTHENTICATED", async () => {
    for (const protocol of ["connect", "grpc", "grpc-web"] as Protocol[]) {
      const c = connectClient(s, DeviceService, protocol, { ca: s.admin.ca });
      await expect(c.listDevices({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    }
    const gjs = grpcJsClient(s, DeviceService, { ca: s.admin.ca });
    try {
      await expect(gjs.unary("listDevices", {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      gjs.close();
    }
  });

  it("refuses a certificate from another CA", async () => {
    const { ensureDevPki } = await import("../../src/pki/dev-pki.js");
    const foreign = await ensureDevPki(`${s.dir}/foreign-pki`);
    const pem = { ca: s.admin.ca, cert: Buffer.from(foreign.admin.certPem), key: Buffer.from(foreign.admin.keyPem) };
    await expect(connectClient(s, DeviceService, "grpc", pem).listDevices({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    const gjs = grpcJsClient(s, DeviceService, pem);
    try {
      await expect(gjs.unary("listDevices", {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      gjs.close();
    }
  });

  it("refuses a device certificate on the app API with PERMISSION_DENIED", async () => {
    const { ensureDevPki, issueDeviceCertificate } = await import("../../src/pki/dev-pki.js");
    const pki = await ensureDevPki(`${s.dir}/certs`);
    const dev = await issueDeviceCertificate(pki.ca, "some-device");
    const pem = { ca: s.admin.ca, cert: Buffer.from(dev.certPem), key: Buffer.from(dev.keyPem) };
    await expect(connectClient(s, DeviceService, "connect", pem).listDevices({})).rejects.toMatchObject({ code: Code.PermissionDenied });
  });
});

describe("validation", () => {
  const c = () => connectClient(s, DeviceService, "connect");

  it("names every bad field of a CreateDevice", async () => {
    expect(await violations(c().createDevice({ deviceId: "Bad_Id", device: { displayName: "x".repeat(300) } }))).toEqual(
      expect.arrayContaining(["device_id", "device.kind", "device.display_name"]),
    );
    expect(await violations(c().createDevice({ deviceId: "ok-id" }))).toEqual(["device"]);
    const bad = led("bad-led", { "Not A Key": "v" });
    bad.device.kind.value.desired = { power: true, brightness: 101, mode: 99 as LedMode, color: { red: 256, green: 0, blue: 0 } };
    expect(await violations(c().createDevice(bad))).toEqual(
      expect.arrayContaining(["device.labels", "device.led.desired.brightness", "device.led.desired.mode", "device.led.desired.color.red"]),
    );
    // Nothing half-written.
    await expect(c().getDevice({ name: "devices/bad-led" })).rejects.toMatchObject({ code: Code.NotFound });
  });

  it("refuses duplicates, unknown names and malformed names", async () => {
    await c().createDevice(led("dup"));
    await expect(c().createDevice(led("dup"))).rejects.toMatchObject({ code: Code.AlreadyExists });
    await expect(c().getDevice({ name: "devices/never" })).rejects.toMatchObject({ code: Code.NotFound });
    expect(await violations(c().getDevice({ name: "devices/a/b" }))).toEqual(["name"]);
    expect(await violations(c().getDevice({ name: "" }))).toEqual(["name"]);
  });

  it("validates filters, page tokens and page sizes", async () => {
    expect(await violations(c().listDevices({ filter: "colour = red" }))).toEqual(["filter"]);
    expect(await violations(c().listDevices({ filter: 'kind = "toaster"' }))).toEqual(["filter"]);
    expect(await violations(c().listDevices({ pageToken: "garbage" }))).toEqual(["page_token"]);
    expect(await violations(c().listDevices({ pageSize: -1 }))).toEqual(["page_size"]);
    const page = await c().listDevices({ pageSize: 1 });
    expect(page.nextPageToken).not.toBe("");
    expect(await violations(c().listDevices({ pageSize: 1, pageToken: page.nextPageToken, filter: 'kind = "led"' }))).toEqual(["page_token"]);
  });

  it("validates update masks", async () => {
    await c().createDevice({ deviceId: "mask-coffee", device: { kind: { case: "coffeeMachine", value: {} } } });
    const upd = (paths: string[], device: Record<string, unknown> = {}) =>
      c().updateDevice({ device: { name: "devices/mask-coffee", ...device }, updateMask: { paths } });
    expect(await violations(upd(["uid"]))).toEqual(["update_mask.paths"]);
    expect(await violations(upd(["led.desired"]))).toEqual(["update_mask.paths"]);
    expect(await violations(upd(["coffee_machine.reported"]))).toEqual(["update_mask.paths"]);
    expect(await violations(upd(["coffee_machine.desired.nonsense"]))).toEqual(["update_mask.paths"]);
    expect(await violations(upd(["whatever"]))).toEqual(["update_mask.paths"]);
    expect(await violations(upd([]))).toEqual(["update_mask"]);
  });
});

describe("updates, etags and deletes", () => {
  const c = () => connectClient(s, DeviceService, "grpc");

  it("applies only the masked fields, including one field of the desired state", async () => {
    const created = await c().createDevice(led("upd-led", { room: "hall" }));
    const updated = await c().updateDevice({
      device: {
        name: created.name,
        displayName: "ignored",
        labels: { room: "attic" },
        kind: { case: "led", value: { desired: { brightness: 90, power: false } } },
      },
      updateMask: { paths: ["labels", "led.desired.brightness"] },
    });
    expect(updated.displayName).toBe("LED upd-led");
    expect(updated.labels).toEqual({ room: "attic" });
    expect(updated.kind.case === "led" && updated.kind.value.desired).toMatchObject({ brightness: 90, power: true, mode: LedMode.SOLID });
    expect(updated.etag).not.toBe(created.etag);
    // An empty mask updates what the request sets.
    const implied = await c().updateDevice({ device: { name: created.name, owner: "alice" } });
    expect(implied.owner).toBe("alice");
    expect(implied.labels).toEqual({ room: "attic" });
  });

  it("refuses a stale etag with ABORTED, for update and delete", async () => {
    const created = await c().createDevice(led("etag-led"));
    await c().updateDevice({ device: { name: created.name, owner: "bob", etag: created.etag }, updateMask: { paths: ["owner"] } });
    await expect(
      c().updateDevice({ device: { name: created.name, owner: "eve", etag: created.etag }, updateMask: { paths: ["owner"] } }),
    ).rejects.toMatchObject({ code: Code.Aborted });
    await expect(c().deleteDevice({ name: created.name, etag: created.etag })).rejects.toMatchObject({ code: Code.Aborted });
    expect((await c().getDevice({ name: created.name })).owner).toBe("bob");
  });

  it("deletes, with allow_missing for idempotent retries", async () => {
    await c().createDevice(led("del-led"));
    await c().deleteDevice({ name: "devices/del-led" });
    await expect(c().getDevice({ name: "devices/del-led" })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(c().deleteDevice({ name: "devices/del-led" })).rejects.toMatchObject({ code: Code.NotFound });
    await c().deleteDevice({ name: "devices/del-led", allowMissing: true });
    // A re-created device gets a new uid, so an old etag can never match it.
    const again = await c().createDevice(led("del-led"));
    expect(again.uid).not.toBe("");
  });

  it("generates an id when device_id is empty", async () => {
    const d = await c().createDevice({ device: { kind: { case: "coffeeMachine", value: {} } } });
    expect(d.name).toMatch(/^devices\/coffee-machine-[0-9a-f]{10}$/);
  });
});

describe("pagination and filters", () => {
  const c = () => connectClient(s, DeviceService, "connect");

  it("pages through every device exactly once, stable under concurrent inserts", async () => {
    for (let i = 0; i < 23; i++) {
      await c().createDevice(led(`page-${String(i).padStart(2, "0")}`, { batch: "paging" }));
    }
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const res = await c().listDevices({ filter: 'labels.batch = "paging"', pageSize: 5, pageToken: token });
      seen.push(...res.devices.map((d) => d.name));
      token = res.nextPageToken;
      // A device inserted before the cursor must not shift later pages.
      if (pages++ === 1) await c().createDevice(led("page-00a", { batch: "paging-late" }));
    } while (token !== "");
    expect(pages).toBe(5);
    expect(seen).toHaveLength(23);
    expect(new Set(seen).size).toBe(23);
    expect(seen).toEqual([...seen].sort());
  });

  it("filters by kind, labels, presence of a label and online state", async () => {
    await c().createDevice({ deviceId: "flt-coffee", device: { labels: { site: "paris", tier: "gold" }, kind: { case: "coffeeMachine", value: {} } } });
    await c().createDevice(led("flt-led", { site: "paris" }));
    const names = async (filter: string) => (await c().listDevices({ filter, pageSize: 1000 })).devices.map((d) => d.name);
    expect(await names('kind = "coffee_machine" AND labels.site = "paris"')).toEqual(["devices/flt-coffee"]);
    expect(await names('labels.site = "paris" AND labels.tier:*')).toEqual(["devices/flt-coffee"]);
    expect(await names('labels.site = "paris" AND labels.tier != "gold"')).toEqual(["devices/flt-led"]);
    expect(await names('labels.site = paris AND kind = "led"')).toEqual(["devices/flt-led"]);
    expect(await names('labels.site = "paris" AND online = true')).toEqual([]);
  });
});

describe("persistence", () => {
  it("keeps devices across a restart on the same data directory", async () => {
    const c = connectClient(s, DeviceService, "connect");
    const created = await c.createDevice(led("survivor", { keep: "yes" }));
    await s.app.stop();
    await s.restart();
    const after = await connectClient(s, DeviceService, "grpc").getDevice({ name: "devices/survivor" });
    expect(toJson(DeviceSchema, after)).toEqual(toJson(DeviceSchema, created));
  });
});
