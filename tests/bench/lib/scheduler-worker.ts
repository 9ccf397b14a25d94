/**
 * Worker-thread entry for the scheduler benchmark: one Tether scheduler (its own postgres.js pool,
 * the system clock) per thread, as one replica would run it. Reports every committed batch of
 * tasks with the wall-clock time the commit was seen, so the main thread can compute fire lag.
 */
import { parentPort, workerData } from "node:worker_threads";
import pino from "pino";
import postgres from "postgres";
import { systemClock } from "../../../src/core/clock.js";
import { createScheduler } from "../../../src/core/rules/scheduler.js";
import { createRuleStore } from "../../../src/store/rule-store.js";

export interface SchedulerWorkerData {
  url: string;
  instance: number;
  batchSize: number;
  poolSize: number;
}

export type SchedulerWorkerMessage =
  | { type: "ready" }
  | { type: "tasks"; instance: number; at: number; tasks: Array<{ id: string; deviceId: string; requestId: string }> }
  | { type: "stopped"; instance: number };

const { url, instance, batchSize, poolSize } = workerData as SchedulerWorkerData;
const port = parentPort!;
const sql = postgres(url, { max: poolSize, onnotice: () => {} });
const scheduler = createScheduler({
  rules: createRuleStore(sql),
  clock: systemClock,
  log: pino({ level: "warn" }),
  batchSize,
  onTasksCreated(tasks) {
    const at = Date.now(); // called right after the transaction committed
    port.postMessage({
      type: "tasks",
      instance,
      at,
      tasks: tasks.map((t) => ({ id: t.id, deviceId: t.deviceId, requestId: t.requestId ?? "" })),
    } satisfies SchedulerWorkerMessage);
  },
});
port.on("message", (m: "start" | "stop") => {
  if (m === "start") scheduler.start();
  else
    void scheduler
      .stop()
      .then(() => sql.end({ timeout: 5 }))
      .then(() => port.postMessage({ type: "stopped", instance } satisfies SchedulerWorkerMessage));
});
port.postMessage({ type: "ready" } satisfies SchedulerWorkerMessage);
