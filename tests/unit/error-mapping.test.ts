import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { errorMappingInterceptor, toConnectError } from "../../src/api/errors.js";
import { ResourceExhaustedError } from "../../src/core/errors.js";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { captureLogger } from "../helpers/auth.js";

/** Runs the interceptor around a server stream whose handler fails with `err` after one message. */
async function streamFailingWith(err: unknown, aborted = false) {
  const capture = captureLogger();
  const ac = new AbortController();
  if (aborted) ac.abort();
  const next = async () => ({
    stream: true,
    message: (async function* () {
      yield {};
      throw err;
    })(),
  });
  const intercepted = errorMappingInterceptor(capture.log)(next as never);
  const res = (await intercepted({
    url: "https://x/tether.v1.DeviceService/WatchDevices",
    signal: ac.signal,
    contextValues: { get: () => undefined },
  } as never)) as unknown as {
    message: AsyncIterable<unknown>;
  };
  let thrown: unknown;
  try {
    for await (const _ of res.message);
  } catch (e) {
    thrown = e;
  }
  return { error: ConnectError.from(thrown), logged: capture.lines() };
}

describe("errorMappingInterceptor on streams", () => {
  it("treats a client that went away as CANCELED, without an error log", async () => {
    const gone = Object.assign(new Error("The stream has been destroyed"), { code: "ERR_HTTP2_INVALID_STREAM" });
    const r = await streamFailingWith(gone);
    expect(r.error.code).toBe(Code.Canceled);
    expect(r.logged.filter((l) => l.level === 50)).toHaveLength(0);
    expect((await streamFailingWith(new Error("boom"), true)).error.code).toBe(Code.Canceled);
  });

  it("still turns a real handler failure into a bare INTERNAL and logs it", async () => {
    const r = await streamFailingWith(new Error("SQL exploded"));
    expect(r.error.code).toBe(Code.Internal);
    expect(r.error.rawMessage).toBe("internal error");
    expect(r.logged.some((l) => l.level === 50 && l.msg === "unhandled error in RPC handler")).toBe(true);
  });
});

describe("toConnectError", () => {
  it("sends RESOURCE_EXHAUSTED's retry delay as google.rpc.RetryInfo", () => {
    const { log } = captureLogger();
    const e = toConnectError(new ResourceExhaustedError("too many failed logins; retry in 2 s", { retryDelayMs: 1500 }), log, "x");
    expect(e.code).toBe(Code.ResourceExhausted);
    const [info] = e.findDetails(RetryInfoSchema);
    expect(info?.retryDelay).toMatchObject({ seconds: 1n, nanos: 500_000_000 });
    expect(toConnectError(new ResourceExhaustedError("full"), log, "x").findDetails(RetryInfoSchema)).toHaveLength(0);
  });
});
