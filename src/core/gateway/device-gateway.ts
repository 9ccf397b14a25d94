import type { Downlink } from "../../../gen/tether/device/v1/downlink_pb.js";
import type { Uplink } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import type { Clock } from "../clock.js";
import { deviceName } from "../devices/device-name.js";
import type { DeviceRepository, StoredDevice } from "../ports/device-repository.js";
import { NotFoundError } from "../errors.js";
import type { CoreLogger } from "../log.js";
import type { ChangeFeed } from "../ports/index.js";
import { desiredStateMessage } from "../tasks/desired-state.js";
import type { Dispatcher } from "../tasks/dispatcher.js";
import { taskRequest } from "../tasks/downlink.js";
import type { TaskRepository } from "../ports/task-repository.js";
import { State } from "../tasks/task-state.js";
import type { UplinkIntake } from "../ports/uplink-intake.js";
import { createDownlinkWaiters } from "./downlink-waiters.js";
import { checkUplinks } from "./uplink-checks.js";

export interface DeviceGatewayDeps {
  tasks: TaskRepository;
  devices: DeviceRepository;
  dispatcher: Dispatcher;
  /** The same intake the MQTT bridge submits to: one path, one set of guarantees. */
  intake: UplinkIntake;
  /**
   * Resolves once the telemetry taken so far is stored; PublishUplink waits for it when an
   * envelope asked for a receipt. Unset: the intake is durable, taking is enough.
   */
  stored?: () => Promise<void>;
  /** Task changes: a task queued (or sent) for a device wakes that device's parked polls. */
  taskFeed: ChangeFeed<Task>;
  clock: Clock;
  log: CoreLogger;
  /** Longest long poll; longer requests are shortened to it. @default 60 s */
  maxListenMs?: number;
}

/** What a poll hands the device. */
export interface PollResult {
  downlinks: Downlink[];
  /** Until when the poll was prepared to wait. */
  listenUntil: Date;
}

export type DeviceGateway = ReturnType<typeof createDeviceGateway>;

/** Longest long poll by default: below the idle timeout of most proxies and load balancers. */
export const DEFAULT_MAX_LISTEN_MS = 60_000;

/**
 * The device protocol for devices on HTTP (DeviceGatewayService). Uplink goes through the same
 * intake as MQTT uplink, after synchronous checks that let the device be told what is wrong.
 * Downlink is pulled: the device's oldest unacknowledged task, claimed like MQTT dispatch claims
 * it, and its desired state when the device's is older. A long poll parks until a task is queued
 * for the device, its desired state changes, a retry becomes due, or its listen time ends.
 *
 * Presence: `online` stays the MQTT connection flag. An HTTP device is reachable while its poll is
 * open (`listen_until_time`), and every call counts as "seen" (`last_seen_time`).
 */
export function createDeviceGateway(d: DeviceGatewayDeps) {
  const { tasks, devices, dispatcher, intake, clock, log } = d;
  const maxListenMs = d.maxListenMs ?? DEFAULT_MAX_LISTEN_MS;
  const waiters = createDownlinkWaiters();
  let closed = false;
  const unsubscribe = d.taskFeed.subscribe((t) => {
    if (t.state !== State.QUEUED && t.state !== State.SENT) return;
    const deviceId = /^devices\/([^/]+)\//.exec(t.name)?.[1];
    if (deviceId) waiters.wake(deviceId);
  });

  // last_seen_time on every call, written at most once a second per device (as the uplink
  // processor does for telemetry): a chatty device must not cost an UPDATE per call.
  const touched = new Map<string, number>();
  async function touch(deviceId: string): Promise<void> {
    const now = clock.now();
    if (now.getTime() - (touched.get(deviceId) ?? 0) < 1000) return;
    if (touched.size >= 100_000) touched.clear();
    touched.set(deviceId, now.getTime());
    await devices.touch(deviceId, now, { uplink: true });
  }

  async function load(deviceId: string): Promise<StoredDevice> {
    const stored = await devices.get(deviceId);
    if (!stored) throw new NotFoundError(`${deviceName(deviceId)} (register the device before it calls Tether)`);
    return stored;
  }

  /** One look: newer desired state first, then the next task. */
  async function collect(stored: StoredDevice, deviceId: string, desiredVersion: bigint) {
    const now = clock.now();
    const downlinks: Downlink[] = [];
    if (BigInt(stored.desiredVersion) > desiredVersion) {
      const msg = desiredStateMessage(stored, now);
      if (msg) downlinks.push(msg);
    }
    const next = await dispatcher.takeNext(deviceId);
    if (next.task) downlinks.push(taskRequest(next.task, now));
    return { downlinks, retryAt: next.retryAt };
  }

  return {
    /**
     * Checks and submits the envelopes in order; resolves once the intake holds every one of them
     * safely. All or nothing: a refused envelope refuses the call before anything is submitted.
     */
    async publish(deviceId: string, uplinks: Uplink[]): Promise<number> {
      const stored = await load(deviceId);
      await checkUplinks(stored, deviceId, uplinks, tasks);
      // Over HTTP the answer is the receipt: no UplinkReceipt downlink, the call waits instead.
      const receipted = uplinks.some((u) => u.receiptRequested);
      for (const u of uplinks) u.receiptRequested = false;
      // Pushed in order in one synchronous loop, so the intake's per-device order is the call's order.
      await Promise.all(uplinks.map((uplink) => intake.submit({ kind: "uplink", deviceId, uplink })));
      if (receipted) await d.stored?.();
      await touch(deviceId);
      return uplinks.length;
    },

    /**
     * What the device should handle now; with `listenMs`, waits up to that long (at most
     * `maxListenMs`) for something. Ends early, with what it has, when `signal` aborts.
     */
    async poll(deviceId: string, opts: { listenMs: number; desiredVersion: bigint }, signal?: AbortSignal): Promise<PollResult> {
      let stored = await load(deviceId);
      const listenMs = Math.max(0, Math.min(opts.listenMs, maxListenMs));
      const start = clock.now();
      const listenUntil = new Date(start.getTime() + listenMs);
      if (listenMs > 0) await devices.setListening(deviceId, listenUntil, start);
      else await touch(deviceId);
      const deadline = Date.now() + listenMs;
      try {
        for (;;) {
          // Armed before looking, so a task queued while we look still wakes us.
          const alarm = waiters.arm(deviceId);
          const { downlinks, retryAt } = await collect(stored, deviceId, opts.desiredVersion);
          const remaining = deadline - Date.now();
          if (downlinks.length > 0 || closed || signal?.aborted || remaining <= 0) {
            alarm.disarm();
            return { downlinks, listenUntil };
          }
          const untilRetry = retryAt ? Math.max(50, retryAt.getTime() - clock.now().getTime()) : Infinity;
          await alarm.wait(Math.min(remaining, untilRetry), signal);
          stored = await load(deviceId);
        }
      } finally {
        if (listenMs > 0)
          await devices.clearListening(deviceId, listenUntil).catch((err: unknown) => log.warn({ err, deviceId }, "clearing listen_until_time failed"));
      }
    },

    /** Wakes the device's parked polls (its desired state changed). */
    wake(deviceId: string): void {
      waiters.wake(deviceId);
    },

    /** Polls parked now, for one device or all. */
    listening(deviceId?: string): number {
      return waiters.count(deviceId);
    },

    /** Shutdown: parked polls answer at once (empty), new ones do not wait. */
    close(): void {
      closed = true;
      unsubscribe();
      waiters.wakeAll();
    },
  };
}
