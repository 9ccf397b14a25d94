import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { Certificate_Origin } from "../../gen/tether/v1/certificate_pb.js";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { CupSize, Recipe } from "../../gen/tether/v1/coffee_machine_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { type Task, Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { eventually } from "../helpers/devices.js";
import { curl, deviceCertFiles, devicePem, dualDevice, httpDevice } from "../helpers/http-device.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack({ TETHER_TASK_SWEEP_MS: "100" });
});
afterAll(async () => {
  await s?.cleanup();
});

const devices = () => connectClient(s, DeviceService, "connect");
const tasks = () => connectClient(s, TaskService, "connect");
const coffee = (id: string) => devices().createDevice({ deviceId: id, device: { kind: { case: "coffeeMachine", value: {} } } });
const brew = {
  command: { kind: { case: "coffeeMachine" as const, value: { action: { case: "brew" as const, value: { recipe: Recipe.LATTE, size: CupSize.LARGE } } } } },
};
const taskId = (t: Task) => t.name.split("/")[3]!;

/** A gate a handler waits on, opened by the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

/** Every task change for `deviceId`, from a watch that is known to be live when this resolves. */
async function watchDevice(deviceId: string) {
  // A marker task on an offline device makes the watch's initial snapshot non-empty, so its first
  // message proves the subscription is live before the test creates anything.
  const marker = `marker-${deviceId}`;
  await coffee(marker);
  await tasks().createTask({ parent: `devices/${marker}`, task: brew });
  const abort = new AbortController();
  const seen: Task[] = [];
  let live!: () => void;
  const isLive = new Promise<void>((r) => (live = r));
  const running = (async () => {
    try {
      for await (const r of tasks().watchTasks({ name: "devices/-", sendInitial: true }, { signal: abort.signal })) {
        live();
        if (r.task?.name.startsWith(`devices/${deviceId}/`)) seen.push(r.task);
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
  })();
  await isLive;
  return {
    seen,
    async stop() {
      abort.abort();
      await running;
    },
  };
}

describe("a device that only uses HTTP", () => {
  it("long-polls, receives a task created through the API, reports progress and result; WatchTasks sees every step", async () => {
    await coffee("http-coffee");
    const watch = await watchDevice("http-coffee");
    const dev = await httpDevice(s, "http-coffee", async (_cmd, ctx) => {
      await ctx.progress(50, "brewing");
      return { kind: { case: "coffeeMachine", value: {} } };
    });
    try {
      // Nothing pending: an immediate poll answers empty, not an error.
      expect(await dev.poll()).toBeUndefined();
      const polled = dev.poll({ listenSeconds: 30 });
      // Apps see the sleepy device listening (and not MQTT-online).
      const listening = await eventually(
        async () => (await devices().getDevice({ name: "devices/http-coffee" })).connectivity?.listenUntilTime,
        10_000,
        "listen_until_time",
      );
      expect(timestampDate(listening).getTime()).toBeGreaterThan(Date.now() + 10_000);
      const dev0 = await devices().getDevice({ name: "devices/http-coffee" });
      expect(dev0.connectivity?.online).toBe(false);
      expect(dev0.connectivity?.lastSeenTime).toBeDefined();

      const created = await tasks().createTask({ parent: "devices/http-coffee", task: brew });
      const got = await polled;
      expect(got?.taskId).toBe(taskId(created));
      expect(got?.attempt).toBe(1);
      expect(got?.command?.kind.case).toBe("coffeeMachine");

      const done = await eventually(
        async () => {
          const t = await tasks().getTask({ name: created.name });
          return t.state === State.SUCCEEDED && t;
        },
        10_000,
        "SUCCEEDED",
      );
      expect(done.attempt).toBe(1);
      expect(done.result?.kind.case).toBe("coffeeMachine");
      expect(dev.executions.get(taskId(created))).toBe(1);
      // The poll is over: no longer listening.
      await eventually(
        async () => !(await devices().getDevice({ name: "devices/http-coffee" })).connectivity?.listenUntilTime,
        10_000,
        "listen_until_time cleared",
      );
      // A finished task is never handed out again.
      expect(await dev.poll()).toBeUndefined();

      await eventually(async () => watch.seen.some((t) => t.state === State.SUCCEEDED), 10_000, "the watch to see SUCCEEDED");
      const states = watch.seen.filter((t) => t.name === created.name).map((t) => t.state);
      const firsts = states.filter((st, i) => states.indexOf(st) === i);
      expect(firsts).toEqual([State.QUEUED, State.SENT, State.DELIVERED, State.RUNNING, State.SUCCEEDED]);
      expect(watch.seen.some((t) => t.state === State.RUNNING && t.progress?.percent === 50 && t.progress.message === "brewing")).toBe(true);
    } finally {
      dev.close();
      await watch.stop();
    }
  });

  it("hands out tasks oldest first, one per poll, each once it is done", async () => {
    await coffee("http-order");
    const dev = await httpDevice(s, "http-order", () => ({ kind: { case: "coffeeMachine", value: {} } }));
    try {
      const a = await tasks().createTask({ parent: "devices/http-order", task: brew });
      const b = await tasks().createTask({ parent: "devices/http-order", task: brew });
      expect((await dev.poll())?.taskId).toBe(taskId(a));
      await eventually(async () => (await tasks().getTask({ name: a.name })).state === State.SUCCEEDED, 10_000, "a done");
      expect((await dev.poll())?.taskId).toBe(taskId(b));
      await eventually(async () => (await tasks().getTask({ name: b.name })).state === State.SUCCEEDED, 10_000, "b done");
      expect(await dev.poll()).toBeUndefined();
    } finally {
      dev.close();
    }
  });

  it("answers an empty long poll when the listen time ends, and shows the desired state when the device's is older", async () => {
    await devices().createDevice({ deviceId: "http-led", device: { kind: { case: "led", value: { desired: { power: true, brightness: 30 } } } } });
    const gw = connectClient(s, DeviceGatewayService, "connect", await devicePem(s, "http-led"));
    const first = await gw.pollDownlink({ listenDuration: { seconds: 1n } });
    expect(first.downlinks.map((d) => d.body.case)).toEqual(["desiredState"]);
    const version = first.downlinks[0]!.body.value as { version: bigint };
    const empty = await gw.pollDownlink({ listenDuration: { nanos: 300_000_000 }, desiredVersion: version.version });
    expect(empty.downlinks).toEqual([]);
    expect(timestampDate(empty.listenUntilTime!).getTime()).toBeGreaterThan(0);
    // A desired-state change wakes a parked poll.
    const parked = gw.pollDownlink({ listenDuration: { seconds: 30n }, desiredVersion: version.version });
    await eventually(async () => (await devices().getDevice({ name: "devices/http-led" })).connectivity?.listenUntilTime, 10_000, "parked");
    await devices().updateDevice({
      device: { name: "devices/http-led", kind: { case: "led", value: { desired: { brightness: 80 } } } },
      updateMask: { paths: ["led.desired.brightness"] },
    });
    const woke = await parked;
    expect(woke.downlinks[0]?.body.case).toBe("desiredState");
    // A listen time beyond 60 s is shortened to 60 s.
    const capped = await gw.pollDownlink({ listenDuration: { seconds: 3600n }, desiredVersion: 0n });
    expect(capped.downlinks.length).toBeGreaterThan(0);
    expect(timestampDate(capped.listenUntilTime!).getTime()).toBeLessThanOrEqual(Date.now() + 60_000);
  });
});

describe("a device mixing MQTT and HTTP", () => {
  it("executes a task once when it switches transport mid-task, in both directions", async () => {
    await coffee("mix-coffee");
    const gates = new Map<string, ReturnType<typeof gate>>();
    const dev = await dualDevice(s, "mix-coffee", async (_cmd, ctx) => {
      await ctx.progress(10, "started");
      await gates.get(ctx.taskId)!.opened;
      return { kind: { case: "coffeeMachine", value: {} } };
    });
    const stateOf = async (t: Task) => (await tasks().getTask({ name: t.name })).state;
    const online = async () => (await devices().getDevice({ name: "devices/mix-coffee" })).connectivity?.online;
    try {
      // MQTT → HTTP: delivered and started over MQTT, finished over HTTP.
      await dev.connectMqtt();
      await eventually(online, 10_000, "online over MQTT");
      const t1 = await tasks().createTask({ parent: "devices/mix-coffee", task: brew });
      gates.set(taskId(t1), gate());
      await eventually(async () => (await stateOf(t1)) === State.RUNNING, 10_000, "t1 RUNNING over MQTT");
      await dev.dropMqtt();
      await eventually(async () => (await online()) === false, 10_000, "offline after the will");
      // The device has it: acknowledged tasks are not handed out again over HTTP.
      expect(await dev.poll()).toBeUndefined();
      gates.get(taskId(t1))!.open(); // the result goes over HTTP
      await eventually(async () => (await stateOf(t1)) === State.SUCCEEDED, 10_000, "t1 SUCCEEDED over HTTP");

      // HTTP → MQTT: handed over HTTP, acknowledgement lost, handed again, finished over MQTT.
      const t2 = await tasks().createTask({ parent: "devices/mix-coffee", task: brew });
      gates.set(taskId(t2), gate());
      expect(await stateOf(t2)).toBe(State.QUEUED); // offline on MQTT: nothing is pushed
      dev.dropHttpUplink = true;
      const first = await dev.poll(10);
      expect(first?.taskId).toBe(taskId(t2));
      // No ack arrived: the task is SENT, and the next poll hands it again (same attempt).
      expect(await stateOf(t2)).toBe(State.SENT);
      const again = await dev.poll();
      expect(again?.taskId).toBe(taskId(t2));
      expect(again?.attempt).toBe(first?.attempt);
      dev.dropHttpUplink = false;
      await dev.connectMqtt(); // hello: the unacknowledged task comes once more, over MQTT
      await eventually(async () => dev.received.filter((r) => r.task.taskId === taskId(t2) && r.via === "mqtt").length > 0, 10_000, "t2 over MQTT");
      await eventually(async () => (await stateOf(t2)) === State.DELIVERED || (await stateOf(t2)) === State.RUNNING, 10_000, "t2 acknowledged over MQTT");
      gates.get(taskId(t2))!.open();
      await eventually(async () => (await stateOf(t2)) === State.SUCCEEDED, 10_000, "t2 SUCCEEDED over MQTT");

      // Received three times over two transports, executed once each.
      expect(dev.received.filter((r) => r.task.taskId === taskId(t2)).length).toBeGreaterThanOrEqual(3);
      expect(dev.executor.executions.get(taskId(t1))).toBe(1);
      expect(dev.executor.executions.get(taskId(t2))).toBe(1);
      const final2 = await tasks().getTask({ name: t2.name });
      expect(final2.attempt).toBe(1);
      dev.mode = "http";
      expect(await dev.poll()).toBeUndefined();
    } finally {
      for (const g of gates.values()) g.open();
      await dev.close();
    }
  });
});

describe("authentication", () => {
  it("takes the device id from the certificate, refuses apps on the gateway and devices on the app API", async () => {
    await coffee("auth-coffee");
    const asAdmin = connectClient(s, DeviceGatewayService, "connect");
    const e1 = await asAdmin.pollDownlink({}).catch((e: unknown) => ConnectError.from(e));
    expect((e1 as ConnectError).code).toBe(Code.PermissionDenied);
    expect((e1 as ConnectError).rawMessage).toMatch(/device certificate/);
    const pem = await devicePem(s, "auth-coffee");
    const e2 = await connectClient(s, DeviceService, "connect", pem)
      .getDevice({ name: "devices/auth-coffee" })
      .catch((e: unknown) => ConnectError.from(e));
    expect((e2 as ConnectError).code).toBe(Code.PermissionDenied);
    const e3 = await connectClient(s, DeviceGatewayService, "connect", { ca: s.admin.ca })
      .pollDownlink({})
      .catch((e: unknown) => ConnectError.from(e));
    expect((e3 as ConnectError).code).toBe(Code.Unauthenticated);
    // gRPC works too, with the same rules.
    const viaGrpc = await connectClient(s, DeviceGatewayService, "grpc", pem).pollDownlink({});
    expect(viaGrpc.downlinks).toEqual([]);
    // A certificate for a device that is not registered.
    const e4 = await connectClient(s, DeviceGatewayService, "connect", await devicePem(s, "never-registered"))
      .pollDownlink({})
      .catch((e: unknown) => ConnectError.from(e));
    expect((e4 as ConnectError).code).toBe(Code.NotFound);
  });
});

describe("bad uplink over HTTP", () => {
  it("refuses foreign, unknown and malformed envelopes with a clear code; nothing is taken from a refused call", async () => {
    await coffee("bad-a");
    await coffee("bad-b");
    const a = connectClient(s, DeviceGatewayService, "connect", await devicePem(s, "bad-a"));
    const b = connectClient(s, DeviceGatewayService, "connect", await devicePem(s, "bad-b"));
    const created = await tasks().createTask({ parent: "devices/bad-a", task: brew });
    const id = taskId(created);
    const polled = await a.pollDownlink({});
    expect(polled.downlinks[0]?.body.case).toBe("task");
    const err = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );

    // Another device's task.
    const foreign = await err(b.publishUplink({ uplinks: [{ body: { case: "ack", value: { taskId: id, attempt: 1 } } }] }));
    expect(foreign?.code).toBe(Code.PermissionDenied);
    expect(foreign?.rawMessage).toMatch(/not a task of devices\/bad-b/);
    // An unknown task.
    const unknown = await err(
      a.publishUplink({ uplinks: [{ body: { case: "result", value: { taskId: crypto.randomUUID(), outcome: { case: "success", value: {} } } } }] }),
    );
    expect(unknown?.code).toBe(Code.NotFound);
    // All or nothing: a valid ack next to a bad result is not taken either.
    const mixed = await err(
      a.publishUplink({
        uplinks: [
          { body: { case: "ack", value: { taskId: id, attempt: 1 } } },
          { body: { case: "result", value: { taskId: crypto.randomUUID(), outcome: { case: "success", value: {} } } } },
        ],
      }),
    );
    expect(mixed?.code).toBe(Code.NotFound);
    expect((await tasks().getTask({ name: created.name })).state).toBe(State.SENT);
    // Malformed envelopes: every bad field is listed.
    const bad = await err(
      a.publishUplink({
        uplinks: [
          { body: { case: "hello", value: {} } },
          { body: { case: "result", value: { taskId: id } } },
          { body: { case: "ack", value: { taskId: "not-a-uuid" } } },
          { body: { case: "state", value: { version: 1n, kind: { case: "led", value: {} } } } },
          { body: { case: "telemetry", value: { samples: [{ metric: "bad metric!", value: Number.NaN }] } } },
          {},
        ],
      }),
    );
    expect(bad?.code).toBe(Code.InvalidArgument);
    const fields = bad?.findDetails((await import("../../gen/google/rpc/error_details_pb.js")).BadRequestSchema)[0]?.fieldViolations.map((v) => v.field);
    expect(fields).toEqual([
      "uplinks[0].hello",
      "uplinks[1].result.outcome",
      "uplinks[2].ack.task_id",
      "uplinks[3].state.led",
      "uplinks[4].telemetry.samples[0].metric",
      "uplinks[4].telemetry.samples[0].value",
      "uplinks[5].body",
    ]);
    expect((await tasks().getTask({ name: created.name })).state).toBe(State.SENT);

    // The same result twice: applied once, the second recorded as late.
    const result = { body: { case: "result" as const, value: { taskId: id, outcome: { case: "success" as const, value: {} } } } };
    expect((await a.publishUplink({ uplinks: [{ body: { case: "ack", value: { taskId: id, attempt: 1 } } }, result] })).acceptedCount).toBe(2);
    await a.publishUplink({ uplinks: [result] });
    const t = await tasks().getTask({ name: created.name });
    expect(t.state).toBe(State.SUCCEEDED);
    expect(t.lateEventCount).toBe(1);
  });
});

describe("telemetry over HTTP", () => {
  it("stores a batch the SDK publishes, as QueryTelemetry shows", async () => {
    await coffee("http-telemetry");
    const dev = await httpDevice(s, "http-telemetry", () => ({}));
    const t0 = Date.now();
    try {
      await dev.sendTelemetry([{ metric: "water_level_percent", value: 42, time: timestampFromDate(new Date(t0)) }]);
      const telemetry = connectClient(s, TelemetryService, "connect");
      const pts = await eventually(
        async () => {
          const r = await telemetry.queryTelemetry({ parent: "devices/http-telemetry", startTime: timestampFromDate(new Date(t0 - 60_000)) });
          return r.points.length > 0 && r.points;
        },
        10_000,
        "the sample stored",
      );
      expect(pts.map((p) => [p.metric, p.value])).toEqual([["water_level_percent", 42]]);
    } finally {
      dev.close();
    }
  });
});

/** The ```sh block after `<!-- gateway:{name} -->` in the README, pointed at this stack. */
async function readmeBlock(name: string): Promise<string> {
  const readme = await readFile(path.join(import.meta.dirname, "../../README.md"), "utf8");
  const m = new RegExp(`<!-- gateway:${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!m) throw new Error(`README block gateway:${name} not found`);
  // `npx tether` is this checkout's CLI (the stack's folder has no node_modules).
  return m[1]!.replaceAll("https://localhost:8443", s.baseUrl).replaceAll("npx tether ", `"${process.execPath}" "${TETHER_CLI}" `);
}

const TETHER_CLI = path.resolve(import.meta.dirname, "../../bin/tether.js");

/** Runs README blocks with bash in the stack's folder (where `certs/` is), as a reader would. */
function bash(script: string): Promise<string> {
  const env = { ...process.env, TETHER_ADDRESS: s.baseUrl, TETHER_CERTS_DIR: s.certsDir };
  return new Promise((resolve, reject) => {
    execFile("/bin/bash", ["-euo", "pipefail", "-c", script], { cwd: s.dir, env }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

describe("the README's curl examples, with the real curl, openssl and tether CLI", () => {
  it("publishes a temperature sample that QueryTelemetry returns, long-polls a task and posts its result", async () => {
    await coffee("porch-coffee");
    // The certificate comes from Tether (CreateCertificate on the device's CSR), so Tether recorded it.
    await bash(await readmeBlock("cert"));
    const issued = await connectClient(s, CertificateService, "connect").listCertificates({ parent: "devices/porch-coffee" });
    expect(issued.certificates.map((c) => c.origin)).toEqual([Certificate_Origin.CSR]);
    const env = await readmeBlock("env");
    const t0 = Date.now();
    expect(JSON.parse(await bash(env + (await readmeBlock("publish"))))).toEqual({ acceptedCount: 1 });
    const telemetry = connectClient(s, TelemetryService, "connect");
    const pts = await eventually(
      async () => {
        const r = await telemetry.queryTelemetry({ parent: "devices/porch-coffee", startTime: timestampFromDate(new Date(t0 - 60_000)) });
        return r.points.length > 0 && r.points;
      },
      10_000,
      "the curl sample stored",
    );
    expect(pts.map((p) => [p.metric, p.value])).toEqual([["boiler_temperature_celsius", 93.5]]);
    expect(timestampDate(pts[0]!.time!).getTime()).toBeGreaterThanOrEqual(t0 - 1000);

    // The poll parks (curl waits), the task arrives, the device acknowledges and finishes it.
    const device = bash(env + (await readmeBlock("poll")) + (await readmeBlock("result")) + 'echo "TASK=$TASK"\n');
    await eventually(async () => (await devices().getDevice({ name: "devices/porch-coffee" })).connectivity?.listenUntilTime, 15_000, "curl listening");
    const created = await tasks().createTask({ parent: "devices/porch-coffee", task: brew });
    const out = await device;
    expect(out).toContain(`TASK=${taskId(created)}`);
    const done = await eventually(
      async () => {
        const t = await tasks().getTask({ name: created.name });
        return t.state === State.SUCCEEDED && t;
      },
      10_000,
      "SUCCEEDED",
    );
    expect(done.result?.kind.case === "coffeeMachine" && done.result.kind.value.dispensedMl).toBe(250);
    expect(done.progress?.message).toBe("brewing");
  });

  it("answers bad HTTP requests with a Connect error code and a clear message, storing nothing", async () => {
    await coffee("curl-bad");
    const f = await deviceCertFiles(s, "curl-bad");
    const tls = ["--cacert", f.ca, "--cert", f.cert, "--key", f.key];
    const url = `https://127.0.0.1:${s.app.apiPort}/tether.device.v1.DeviceGatewayService/PublishUplink`;
    const json = ["-H", "Content-Type: application/json"];
    const sample = '{"uplinks":[{"telemetry":{"samples":[{"metric":"bad_probe","value":1}]}}]}';
    for (const http of ["--http1.1", "--http2"]) {
      // curl's default content type for -d is form-encoded: refused, and told what to send.
      const ctype = await curl([http, ...tls, "-d", sample, url]);
      expect(ctype.status).toBe(415);
      expect(JSON.parse(ctype.body)).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/Content-Type: application\/json/) });
      const malformed = await curl([http, ...tls, ...json, "-d", '{"uplinks":[{"telemetry":', url]);
      expect(malformed.status).toBe(400);
      expect(JSON.parse(malformed.body)).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/cannot decode .* from JSON/) });
    }
    const big = path.join(s.dir, "big.json");
    const samples = Array.from({ length: 9000 }, (_, i) => ({ metric: "bad_probe", value: i, tags: { padding: "x".repeat(600) } }));
    const body = JSON.stringify({ uplinks: [{ telemetry: { samples } }] });
    expect(body.length).toBeGreaterThan(4 * 1024 * 1024); // TETHER_READ_MAX_BYTES's default
    await writeFile(big, body);
    const oversized = await curl([...tls, ...json, "--data-binary", `@${big}`, url]);
    expect(oversized.status).toBe(429);
    expect(JSON.parse(oversized.body)).toMatchObject({ code: "resource_exhausted", message: expect.stringMatching(/larger than configured readMaxBytes/) });
    const foreign = await tasks().createTask({ parent: "devices/porch-coffee", task: brew });
    const other = await curl([...tls, ...json, "-d", `{"uplinks":[{"ack":{"taskId":"${taskId(foreign)}"}}]}`, url]);
    expect(other.status).toBe(403);
    expect(JSON.parse(other.body)).toMatchObject({ code: "permission_denied" });
    const unknown = await curl([...tls, ...json, "-d", `{"uplinks":[{"result":{"taskId":"${crypto.randomUUID()}","success":{}}}]}`, url]);
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toMatchObject({ code: "not_found" });
    // None of it was taken: a good call afterwards is the only sample stored.
    expect((await curl([...tls, ...json, "-d", sample, url])).status).toBe(200);
    const telemetry = connectClient(s, TelemetryService, "connect");
    const pts = await eventually(
      async () => {
        const r = await telemetry.queryTelemetry({ parent: "devices/curl-bad", startTime: timestampFromDate(new Date(Date.now() - 3_600_000)) });
        return r.points.length > 0 && r.points;
      },
      10_000,
      "the good sample",
    );
    expect(pts.map((p) => p.value)).toEqual([1]);
    expect((await tasks().getTask({ name: foreign.name })).state).toBe(State.QUEUED);
  });
});
