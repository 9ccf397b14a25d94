import http2 from "node:http2";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { WatchTasksRequestSchema } from "../../gen/tether/v1/task_service_pb.js";
import { type RunningMosquitto, startMosquitto } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { type Replica, startReplica } from "../helpers/replica.js";
import { alive, clients, pumpTasks, rssBytes, scenarioDir, type ScenarioDir, startFleet } from "./lib/fleet.js";
import { reportSummary } from "./lib/summary.js";

/**
 * Scenario 4b: slow watch-stream consumers. Clients open WatchTasks over every task and then stop
 * reading (HTTP/2 flow control stalls the server's writes), while a normal client watches the same
 * stream and thousands of tasks run. Each stalled watcher must be cut off once it falls
 * WATCH_BUFFER changes behind (RST_STREAM ENHANCE_YOUR_CALM), memory must stay bounded, and the
 * reading watcher must see every task to the end.
 */
const TASKS = Number(process.env.FAULTS_SLOW_TASKS ?? 3000);
const STALLED = 5;
const RSS_BOUND = 1024 * 1024 * 1024;

let s: ScenarioDir;
let broker: RunningMosquitto;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let r: Replica;

beforeAll(async () => {
  s = await scenarioDir("slow");
  broker = await startMosquitto({ certsDir: s.certsDir });
  db = await freshDatabase("tether_faults_slow");
  r = await startReplica("slow", { DATABASE_URL: db.url, MQTT_URL: broker.url, TETHER_CERTS_DIR: s.certsDir, TETHER_DATA_DIR: path.join(s.dir, "data") });
});
afterAll(async () => {
  await r?.stop();
  await broker?.stop();
  await db?.drop();
  await s?.cleanup();
});

/** A gRPC WatchTasks call whose client never reads the response: only the headers arrive. */
function stalledWatch(session: http2.ClientHttp2Session): Promise<{ rstCode: number; bytesBeforeCut: number }> {
  const body = toBinary(WatchTasksRequestSchema, create(WatchTasksRequestSchema, { name: "devices/-" }));
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  Buffer.from(body).copy(frame, 5);
  const stream = session.request({ ":method": "POST", ":path": "/tether.v1.TaskService/WatchTasks", "content-type": "application/grpc", te: "trailers" });
  stream.end(frame);
  stream.pause(); // never read: the client's flow-control window fills and the server's writes stall
  return new Promise((resolve) => {
    stream.on("error", () => {});
    stream.on("close", () => resolve({ rstCode: stream.rstCode ?? -1, bytesBeforeCut: stream.readableLength }));
  });
}

describe("abuse: slow watch-stream consumers", () => {
  it("cuts off watchers that stop reading, keeps memory bounded, and the reading watcher sees everything", async () => {
    const c = clients(r, s.pem);
    const ids = Array.from({ length: 20 }, (_, i) => `slow-${i}`);
    const fleet = await startFleet(broker.url, s, ids, c.devices);
    const session = http2.connect(r.baseUrl, { ca: s.pem.ca, cert: s.pem.cert, key: s.pem.key });
    const watch = new AbortController();
    try {
      const stalled = Array.from({ length: STALLED }, () => stalledWatch(session));
      // The reading watcher: every task it sees reach SUCCEEDED.
      const succeeded = new Set<string>();
      let changes = 0;
      const reading = (async () => {
        for await (const { task } of c.tasks.watchTasks({ name: "devices/-" }, { signal: watch.signal })) {
          changes++;
          if (task?.state === State.SUCCEEDED) succeeded.add(task.name.split("/")[3]!);
        }
      })().catch((err: unknown) => {
        if (!watch.signal.aborted) throw err;
      });
      await new Promise((res) => setTimeout(res, 500)); // the watches are open before the first change

      let peakRss = 0;
      const sampler = setInterval(() => void rssBytes(r.pid).then((b) => (peakRss = Math.max(peakRss, b || 0))), 250);
      const started = Date.now();
      const { accepted } = await pumpTasks({ tasks: () => [c.tasks], devices: ids, total: TASKS, concurrency: 32, runId: "slow" });
      const cuts = await Promise.all(stalled);
      const cutAfterMs = Date.now() - started;
      // The reading watcher keeps going: it sees every accepted task succeed.
      const deadline = Date.now() + 120_000;
      while (succeeded.size < accepted.size && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
      clearInterval(sampler);
      const missed = [...accepted.keys()].filter((id) => !succeeded.has(id)).length;
      reportSummary({
        scenario: "4b slow watch consumers",
        injected: `${STALLED} WatchTasks streams that never read, beside one that does`,
        tasks: accepted.size,
        lost: missed,
        duplicated: 0,
        extra: {
          "stalled watchers cut": `${cuts.filter((x) => x.rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM).length}/${STALLED} (RST_STREAM ENHANCE_YOUR_CALM)`,
          "all cut within": `${(cutAfterMs / 1000).toFixed(1)} s of the first task`,
          "changes seen by the reading watcher": changes,
          "peak RSS": `${Math.round(peakRss / 1024 / 1024)} MiB`,
        },
      });
      expect(cuts.map((x) => x.rstCode)).toEqual(Array(STALLED).fill(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM));
      expect(missed).toBe(0);
      expect(alive(r.pid)).toBe(true);
      expect(peakRss).toBeLessThan(RSS_BOUND);
      // Each task executed once on its device.
      expect([...fleet.executions().values()].every((n) => n === 1)).toBe(true);
      watch.abort();
      await reading;
    } finally {
      watch.abort();
      session.destroy();
      await fleet.close();
    }
  });
});
