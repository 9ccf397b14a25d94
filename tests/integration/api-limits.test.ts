import http2 from "node:http2";
import https from "node:https";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService, WatchDevicesResponse_Type as Type } from "../../gen/tether/v1/device_service_pb.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { eventually } from "../helpers/devices.js";
import { metricValue } from "../helpers/replica.js";
import { startTestStack, type TestStack } from "../helpers/stack.js";

/**
 * Exhaustion and transport details of the API port: the per-principal stream cap, HTTP/2's
 * concurrent-stream setting, unknown methods answered the way each protocol expects, and the
 * security headers on every HTTP response of both ports.
 */
const CAP = 3;
/** A gRPC length-prefixed frame holding an empty message. */
const EMPTY_GRPC_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);
let s: TestStack;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  const consoleDir = path.join(process.env.TMPDIR ?? "/tmp", `tether-console-${process.pid}-${Date.now()}`);
  await mkdir(path.join(consoleDir, "assets"), { recursive: true });
  await writeFile(path.join(consoleDir, "index.html"), "<!doctype html><title>console</title>");
  await writeFile(path.join(consoleDir, "assets", "app-abc123.js"), "console.log(1)");
  s = await startTestStack({ TETHER_MAX_STREAMS_PER_PRINCIPAL: String(CAP), TETHER_HTTP2_MAX_CONCURRENT_STREAMS: "50", TETHER_CONSOLE_DIR: consoleDir });
  for (const u of ["wendy", "stan"]) tokens[u] = await userToken(s, u);
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

const scrape = async () => (await fetch(`${s.opsUrl}/metrics`)).text();
/** A new client (its own transport, so its own HTTP/2 connection) for `user`. */
const devicesAs = (user: string) => bearerClient(s, DeviceService, tokens[user]!);

/** Opens WatchDevices and resolves once the server has sent its initial snapshot (the stream is open). */
async function openWatch(client: Client<typeof DeviceService>) {
  const ctrl = new AbortController();
  const it = client.watchDevices({}, { signal: ctrl.signal })[Symbol.asyncIterator]();
  for (;;) {
    const r = await it.next();
    if (r.done) throw new Error("watch ended before INITIAL_COMPLETE");
    if (r.value.type === Type.INITIAL_COMPLETE) break;
  }
  const rest = (async () => {
    try {
      while (!(await it.next()).done);
    } catch {
      // aborted by the test
    }
  })();
  return { stop: async () => (ctrl.abort(), await rest) };
}

async function refusal(client: Client<typeof DeviceService>): Promise<ConnectError> {
  try {
    await openWatch(client);
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the watch over the cap was accepted");
}

describe("streaming calls per principal", () => {
  it("refuses the stream over the cap with RESOURCE_EXHAUSTED, across connections, and releases on abort", async () => {
    // Each watch on its own connection: the cap is the principal's, not the connection's.
    const open = [];
    for (let i = 0; i < CAP; i++) open.push(await openWatch(devicesAs("wendy")));
    const err = await refusal(devicesAs("wendy"));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/too many open streams: user wendy already has 3 open \(limit 3\)/);
    // Another user is not affected.
    const stans = await openWatch(devicesAs("stan"));
    const text = await scrape();
    expect(metricValue(text, "tether_api_streams_refused_total", { kind: "user" })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, "tether_api_streams_open")).toBe(CAP + 1);

    // The client cancelling one stream gives its slot back.
    await open.pop()!.stop();
    await eventually(async () => metricValue(await scrape(), "tether_api_streams_open") === CAP, 10_000, "slot released on abort");
    open.push(await openWatch(devicesAs("wendy")));
    expect((await refusal(devicesAs("wendy"))).code).toBe(Code.ResourceExhausted);

    await Promise.all([...open, stans].map((w) => w.stop()));
    await eventually(async () => metricValue(await scrape(), "tether_api_streams_open") === 0, 10_000, "every slot released");
  });

  it("releases the slot when the connection drops and when the stream fails", async () => {
    // Watches on a raw HTTP/2 connection that is then destroyed: no RST_STREAM, no cancel, the socket just goes.
    const session = http2.connect(s.baseUrl, { ca: s.admin.ca });
    session.on("error", () => {});
    for (let i = 0; i < CAP; i++) {
      const req = session.request({
        ":method": "POST",
        ":path": "/tether.v1.DeviceService/WatchDevices",
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${tokens.wendy}`,
      });
      req.on("error", () => {});
      req.on("data", () => {});
      req.end(EMPTY_GRPC_MESSAGE);
    }
    await eventually(async () => metricValue(await scrape(), "tether_api_streams_open") === CAP, 10_000, "three raw watches open");
    expect((await refusal(devicesAs("wendy"))).code).toBe(Code.ResourceExhausted);
    session.destroy();
    await eventually(async () => metricValue(await scrape(), "tether_api_streams_open") === 0, 10_000, "slots released after the connection dropped");

    // Streams that fail (a bad filter) do not keep their slot.
    for (let i = 0; i < CAP + 2; i++) {
      const err = await devicesAs("wendy")
        .watchDevices({ filter: "((" })
        [Symbol.asyncIterator]()
        .next()
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      expect(err?.code).toBe(Code.InvalidArgument);
    }
    const w = await openWatch(devicesAs("wendy"));
    await w.stop();
  });

  it("caps anonymous streams (health Watch) per client address", async () => {
    const session = http2.connect(s.baseUrl, { ca: s.admin.ca });
    session.on("error", () => {});
    const watch = () => {
      const req = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc", te: "trailers" });
      req.on("error", () => {});
      req.end(EMPTY_GRPC_MESSAGE);
      return new Promise<string | undefined>((resolve) => {
        req.on("response", (h) => h["grpc-status"] !== undefined && resolve(String(h["grpc-status"])));
        req.on("trailers", (t) => resolve(String(t["grpc-status"])));
        req.on("data", () => resolve(undefined)); // a health message: the watch is open
      });
    };
    for (let i = 0; i < CAP; i++) expect(await watch()).toBeUndefined();
    expect(await watch()).toBe(String(Code.ResourceExhausted));
    session.destroy();
    await eventually(async () => metricValue(await scrape(), "tether_api_streams_open") === 0, 10_000, "anonymous slots released");
  });

  it("announces the HTTP/2 concurrent-stream limit in SETTINGS", async () => {
    const session = http2.connect(s.baseUrl, { ca: s.admin.ca, cert: s.admin.cert, key: s.admin.key });
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
      expect(settings.maxConcurrentStreams).toBe(50);
    } finally {
      session.close();
    }
  });
});

/** One raw HTTP/2 request; returns status, headers (trailers merged) and body. */
async function h2(reqPath: string, headers: http2.OutgoingHttpHeaders, body?: Buffer) {
  const session = http2.connect(s.baseUrl, { ca: s.admin.ca, cert: s.admin.cert, key: s.admin.key });
  try {
    return await new Promise<{
      status: number;
      headers: http2.IncomingHttpHeaders;
      trailers: http2.IncomingHttpHeaders;
      body: Buffer;
      endStreamOnHeaders: boolean;
    }>((resolve, reject) => {
      const req = session.request({ ":path": reqPath, ...headers });
      const chunks: Buffer[] = [];
      let res: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      let endStreamOnHeaders = false;
      req.on("response", (h, flags) => {
        res = h;
        endStreamOnHeaders = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      });
      req.on("trailers", (t) => (trailers = t));
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve({ status: Number(res[":status"]), headers: res, trailers, body: Buffer.concat(chunks), endStreamOnHeaders }));
      req.on("error", reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}

/** One HTTP/1.1 request over TLS with the admin certificate. */
function h1(reqPath: string, method = "GET", headers: Record<string, string> = {}, body?: string) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = https.request(`${s.baseUrl}${reqPath}`, { method, headers, ca: s.admin.ca, cert: s.admin.cert, key: s.admin.key }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("unknown methods", () => {
  it("answers gRPC with HTTP 200 and a trailers-only grpc-status 12", async () => {
    for (const p of ["/tether.v1.NoSuchService/Nope", "/tether.v1.DeviceService/NoSuchMethod"]) {
      const r = await h2(p, { ":method": "POST", "content-type": "application/grpc", te: "trailers" }, EMPTY_GRPC_MESSAGE);
      expect(r.status, p).toBe(200);
      expect(r.endStreamOnHeaders, "trailers-only: the HEADERS frame ends the stream").toBe(true);
      expect(r.headers["content-type"]).toBe("application/grpc");
      expect(r.headers["grpc-status"]).toBe("12");
      expect(decodeURIComponent(String(r.headers["grpc-message"]))).toMatch(/unknown method/);
    }
  });

  it("gives a grpc-js client UNIMPLEMENTED with the server's message, not a transport error", async () => {
    const client = new grpc.Client(`localhost:${s.app.apiPort}`, grpc.credentials.createSsl(s.admin.ca, s.admin.key, s.admin.cert));
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        client.makeUnaryRequest(
          "/tether.v1.NoSuchService/Nope",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          (e) => resolve(e!),
        );
      });
      expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(err.details).toMatch(/unknown method \/tether\.v1\.NoSuchService\/Nope/);
    } finally {
      client.close();
    }
  });

  it("answers gRPC-Web with grpc-status 12 and Connect with a 404 JSON error", async () => {
    const web = await h2("/tether.v1.NoSuchService/Nope", { ":method": "POST", "content-type": "application/grpc-web+proto" }, EMPTY_GRPC_MESSAGE);
    expect(web.status).toBe(200);
    expect(web.headers["grpc-status"]).toBe("12");
    expect(decodeURIComponent(String(web.headers["grpc-message"]))).toMatch(/unknown method/);

    const connect = await h1("/tether.v1.NoSuchService/Nope", "POST", { "content-type": "application/json" }, "{}");
    expect(connect.status).toBe(404);
    expect(connect.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(connect.body)).toMatchObject({ code: "unimplemented", message: expect.stringMatching(/unknown method/) });
  });
});

// TETHER_JSON_UNKNOWN_FIELDS defaults to reject: a typo in a JSON field name is refused, not dropped.
describe("unknown JSON fields", () => {
  const post = (method: string, body: string) => h1(`/${method}`, "POST", { "content-type": "application/json" }, body);

  it("refuses a Connect JSON request with a field the message does not have, naming it", async () => {
    const typo = await post("tether.v1.TaskService/CreateTask", '{"parent":"devices/x","requestID":"7f1c"}');
    expect(typo.status).toBe(400);
    expect(JSON.parse(typo.body)).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(/tether\.v1\.CreateTaskRequest from JSON: key "requestID" is unknown/),
    });
    const health = await post("grpc.health.v1.Health/Check", '{"servic":""}');
    expect(health.status).toBe(400);
  });

  it("accepts the same request with known fields (lowerCamelCase or the proto name)", async () => {
    for (const body of ['{"service":""}', "{}"]) {
      const ok = await post("grpc.health.v1.Health/Check", body);
      expect(ok.status, body).toBe(200);
      expect(JSON.parse(ok.body)).toEqual({ status: "SERVING" });
    }
  });
});

describe("security headers", () => {
  const HSTS = "max-age=31536000";
  const expectHeaders = (what: string, h: Record<string, unknown>, hsts = true) => {
    expect(h["x-content-type-options"], what).toBe("nosniff");
    if (hsts) expect(h["strict-transport-security"], what).toBe(HSTS);
  };

  it("sets HSTS and nosniff on every API response: RPCs, errors, static files, the CRL", async () => {
    const rpc = await h2("/grpc.health.v1.Health/Check", { ":method": "POST", "content-type": "application/grpc", te: "trailers" }, EMPTY_GRPC_MESSAGE);
    expect(rpc.trailers["grpc-status"]).toBe("0");
    expectHeaders("gRPC call", rpc.headers);
    const unauthenticated = await h2(
      "/tether.v1.DeviceService/ListDevices",
      { ":method": "POST", "content-type": "application/grpc", te: "trailers" },
      EMPTY_GRPC_MESSAGE,
    );
    expectHeaders("gRPC error", unauthenticated.headers);
    expectHeaders("unknown gRPC method", (await h2("/x.Y/Z", { ":method": "POST", "content-type": "application/grpc" }, EMPTY_GRPC_MESSAGE)).headers);
    expectHeaders("Connect call", (await h1("/grpc.health.v1.Health/Check", "POST", { "content-type": "application/json" }, "{}")).headers);
    expectHeaders("unknown Connect method", (await h1("/x.Y/Z", "POST", { "content-type": "application/json" }, "{}")).headers);
    expectHeaders("unsupported content type", (await h1("/grpc.health.v1.Health/Check", "POST", { "content-type": "text/plain" }, "x")).headers);
    expectHeaders("console index", (await h1("/")).headers);
    expectHeaders("console asset", (await h1("/assets/app-abc123.js")).headers);
    expectHeaders("missing file", (await h1("/nope.png")).headers);
    expectHeaders("CRL", (await h1("/crl.pem")).headers);
    expectHeaders("HTTP/2 GET", (await h2("/", { ":method": "GET" })).headers);
  });

  it("sets nosniff on every response of the operations port", async () => {
    for (const p of ["/metrics", "/healthz", "/readyz", "/nope"]) {
      const r = await fetch(`${s.opsUrl}${p}`);
      expectHeaders(p, Object.fromEntries(r.headers), false);
    }
    const post = await fetch(`${s.opsUrl}/metrics`, { method: "POST" });
    expect(post.status).toBe(405);
    expectHeaders("405", Object.fromEntries(post.headers), false);
  });
});
