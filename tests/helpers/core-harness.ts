/**
 * Core services wired as the composition root wires them, over in-process PGlite, in-memory feeds,
 * a recording device link and a fake clock: no TLS, no MQTT, no sockets. Dispatcher, lifecycle,
 * intake and uplink rules get tests that run in milliseconds once the database is migrated.
 */
import type { PGlite } from "@electric-sql/pglite";
import type { Downlink } from "../../gen/tether/device/v1/downlink_pb.js";
import type { Device } from "../../gen/tether/v1/device_pb.js";
import type { Task } from "../../gen/tether/v1/task_pb.js";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { createCounters } from "../../src/core/counters.js";
import { createDeviceService } from "../../src/core/devices/device-service.js";
import type { CoreLogger } from "../../src/core/log.js";
import type { DeviceLink } from "../../src/core/ports/index.js";
import { createDispatcher } from "../../src/core/tasks/dispatcher.js";
import { createLifecycle } from "../../src/core/tasks/task-lifecycle.js";
import { createTaskBatches } from "../../src/core/tasks/task-batches.js";
import { createTaskAnnouncer } from "../../src/core/tasks/task-intake.js";
import { createTaskService } from "../../src/core/tasks/task-service.js";
import { createUplinkProcessor } from "../../src/core/uplink/uplink-processor.js";
import type { Sql } from "../../src/store/database.js";
import { withCallAudit } from "../../src/store/audit-context.js";
import { createDeviceStore } from "../../src/store/device-store.js";
import { createTaskStore } from "../../src/store/task-store.js";
import { type FakeClock, fakeClock } from "./fake-clock.js";
import { inProcessSql, migratedPglite } from "./pglite-in-process.js";

/** A device link that records every downlink, and can be told to refuse (broker away). */
export interface RecordingLink extends DeviceLink {
  readonly sent: Array<{ deviceId: string; message: Downlink }>;
  /** The downlinks sent to one device, in order. */
  to(deviceId: string): Downlink[];
  /** While set, `send` rejects with this error. */
  failWith?: Error;
}

export function recordingLink(): RecordingLink {
  const link: RecordingLink = {
    sent: [],
    to: (deviceId) => link.sent.filter((s) => s.deviceId === deviceId).map((s) => s.message),
    async send(deviceId, message) {
      if (link.failWith) throw link.failWith;
      link.sent.push({ deviceId, message });
    },
  };
  return link;
}

const quiet: CoreLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface CoreHarness {
  db: PGlite;
  sql: Sql;
  clock: FakeClock;
  link: RecordingLink;
  counters: ReturnType<typeof createCounters>;
  taskFeed: ReturnType<typeof createMemoryFeed<Task>>;
  deviceFeed: ReturnType<typeof createMemoryFeed<Device>>;
  stores: { devices: ReturnType<typeof createDeviceStore>; tasks: ReturnType<typeof createTaskStore> };
  lifecycle: ReturnType<typeof createLifecycle>;
  dispatcher: ReturnType<typeof createDispatcher>;
  devices: ReturnType<typeof createDeviceService>;
  tasks: ReturnType<typeof createTaskService>;
  uplink: ReturnType<typeof createUplinkProcessor>;
  close(): Promise<void>;
}

/** Builds the core over a fresh migrated database. Close it in afterAll/afterEach. */
export async function wireCore(start = "2026-01-05T10:00:00Z"): Promise<CoreHarness> {
  const db = await migratedPglite();
  const sql = inProcessSql(db);
  const clock = fakeClock(start);
  const link = recordingLink();
  const counters = createCounters();
  const taskFeed = createMemoryFeed<Task>();
  const deviceFeed = createMemoryFeed<Device>();
  const stores = { devices: createDeviceStore(sql), tasks: createTaskStore(sql) };
  const lifecycle = createLifecycle({ tasks: stores.tasks, feed: taskFeed, clock, counters });
  const dispatcher = createDispatcher({ tasks: stores.tasks, devices: stores.devices, link, feed: taskFeed, lifecycle, clock, log: quiet });
  const devices = createDeviceService({
    devices: stores.devices,
    clock,
    feed: deviceFeed,
    onDesiredStateChanged: (id) => void dispatcher.sendDesiredState(id),
    userExists: async () => true,
  });
  const announceTasks = createTaskAnnouncer({ feed: taskFeed, dispatcher, log: quiet });
  // The group commits as the composition root wires them (one flush at a time: one connection).
  const batches = createTaskBatches({ tasks: stores.tasks, devices: stores.devices, clock });
  const tasks = createTaskService({
    tasks: stores.tasks,
    devices: stores.devices,
    lifecycle,
    dispatcher,
    feed: taskFeed,
    announce: announceTasks,
    // As the composition root: each caller's audit event rides with its task into the batch.
    create: (t) => batches.create(withCallAudit(t)),
    readDevice: batches.device,
    clock,
  });
  const uplink = createUplinkProcessor({
    tasks: stores.tasks,
    devices: stores.devices,
    lifecycle,
    dispatcher,
    deviceFeed,
    clock,
    counters,
    log: quiet,
    batches,
  });
  return {
    db,
    sql,
    clock,
    link,
    counters,
    taskFeed,
    deviceFeed,
    stores,
    lifecycle,
    dispatcher,
    devices,
    tasks,
    uplink,
    async close() {
      await batches.close();
      await sql.end({ timeout: 1 });
      await db.close();
    },
  };
}

/**
 * Resolves once `check` returns a value other than undefined/false: polled on every event-loop
 * turn at first, then every few ms, for up to `withinMs` of real time (a loaded machine is slow,
 * not wrong).
 */
export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, withinMs = 20_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (let i = 0; ; i++) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`never happened within ${withinMs} ms: ${what}`);
    await new Promise((r) => (i < 200 ? setImmediate(r) : setTimeout(r, 5)));
  }
}
