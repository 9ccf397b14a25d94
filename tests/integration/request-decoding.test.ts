/**
 * A request body that is not valid protobuf binary is the client's fault, as malformed JSON is:
 * INVALID_ARGUMENT with a message naming the type, over gRPC and Connect. A handler's own failure
 * stays INTERNAL. (connect-es answers INTERNAL for the binary case; patches/@connectrpc+connect
 * changes that for request decoding only.)
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { errorMappingInterceptor } from "../../src/api/errors.js";
import { jsonReadOptions } from "../../src/api/server.js";

let server: http2.Http2Server;
let port: number;
let client: grpc.Client;
const sessions = new Set<http2.ServerHttp2Session>();

beforeAll(async () => {
  server = http2.createServer(
    connectNodeAdapter({
      // TETHER_JSON_UNKNOWN_FIELDS=ignore (the rejecting default is tested on the full stack in api-limits.test.ts).
      jsonOptions: jsonReadOptions("ignore"),
      interceptors: [errorMappingInterceptor(pino({ level: "silent" }))],
      routes: (router) =>
        router.service(DeviceService, {
          getDevice: (req) => {
            if (req.name === "devices/broken") throw new Error("the database is on fire");
            return create(DeviceSchema, { name: req.name });
          },
        }),
    }),
  );
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  for (const s of sessions) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const PATH = "/tether.v1.DeviceService/GetDevice";

/** A unary gRPC call whose request bytes are sent as given (no protobuf encoding on our side). */
function rawGrpc(body: Buffer): Promise<grpc.ServiceError | Buffer> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      new grpc.Metadata(),
      {},
      (err, res) => resolve(err ?? res!),
    );
  });
}

/** A Connect unary POST over HTTP/2. */
async function connectPost(contentType: string, body: Buffer | string): Promise<{ status: number; json: { code?: string; message?: string } }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const req = session.request({ ":method": "POST", ":path": PATH, "content-type": contentType, "connect-protocol-version": "1" });
    req.end(body);
    let status = 0;
    req.on("response", (h) => void (status = Number(h[":status"])));
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return { status, json: JSON.parse(Buffer.concat(chunks).toString() || "{}") };
  } finally {
    session.close();
  }
}

describe("request decoding errors", () => {
  it("gRPC: garbage bytes are INVALID_ARGUMENT (3), naming the request type", async () => {
    // 0x0a = field 1, length-delimited, then a length far beyond the body: not a GetDeviceRequest.
    const err = await rawGrpc(Buffer.from([0x0a, 0xff, 0x01, 0x02]));
    expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    // grpc-message is percent-encoded; grpc-js decodes it with decodeURI, which leaves `%3A` for ":".
    expect(decodeURIComponent((err as grpc.ServiceError).details)).toBe("cannot decode message tether.v1.GetDeviceRequest from binary: premature EOF");
  });

  it("gRPC: an illegal wire type and a string that is not UTF-8 are INVALID_ARGUMENT too", async () => {
    expect(await rawGrpc(Buffer.from([0x0f]))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining("illegal tag") });
    expect(await rawGrpc(Buffer.from([0x0a, 0x02, 0xff, 0xfe]))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it("gRPC: a well-formed request still works, and a handler's failure stays INTERNAL", async () => {
    const ok = await rawGrpc(Buffer.from([0x0a, 0x09, ...Buffer.from("devices/a")]));
    expect(Buffer.isBuffer(ok)).toBe(true);
    const broken = await rawGrpc(Buffer.concat([Buffer.from([0x0a, 14]), Buffer.from("devices/broken")]));
    expect(broken).toMatchObject({ code: grpc.status.INTERNAL, details: "internal error" });
  });

  it("Connect: garbage application/proto is 400 invalid_argument, like malformed JSON", async () => {
    const binary = await connectPost("application/proto", Buffer.from([0x0a, 0xff, 0x01]));
    expect(binary.status).toBe(400);
    expect(binary.json).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(/^cannot decode message tether\.v1\.GetDeviceRequest from binary/),
    });
    const json = await connectPost("application/json", "{not json");
    expect(json.status).toBe(400);
    expect(json.json.code).toBe("invalid_argument");
  });

  it("Connect JSON with TETHER_JSON_UNKNOWN_FIELDS=ignore: an unknown field is dropped, the call answered", async () => {
    const res = await connectPost("application/json", '{"name":"devices/a","nmae":"typo"}');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ name: "devices/a" });
  });
});
