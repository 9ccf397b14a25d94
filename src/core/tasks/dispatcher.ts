import type { Task } from "../../../gen/tether/v1/task_pb.js";
import type { Clock } from "../clock.js";
import type { DeviceRepository } from "../ports/device-repository.js";
import type { CoreLogger } from "../log.js";
import type { ChangeFeed, DeviceLink } from "../ports/index.js";
import { BURST_BATCH, deliverableCount } from "./delivery-plan.js";
import { desiredStateMessage } from "./desired-state.js";
import { cancelTask, noPendingTask, taskRequest } from "./downlink.js";
import type { Lifecycle } from "./task-lifecycle.js";
import { type TaskRecord, toTaskProto } from "./task-record.js";
import type { TaskRepository } from "../ports/task-repository.js";
import { State } from "./task-state.js";

export interface DispatcherDeps {
  tasks: TaskRepository;
  devices: DeviceRepository;
  link: DeviceLink;
  feed: ChangeFeed<Task>;
  lifecycle: Lifecycle;
  clock: Clock;
  log: CoreLogger;
}

export type Dispatcher = ReturnType<typeof createDispatcher>;

/**
 * Sends what the database says should be on its way to a device: queued tasks (per the device's
 * delivery policy), cancellations, desired state. Work for one device is serialised in this
 * process so per-device order holds; across replicas the device row lock in `claimForSend` does it.
 */
export function createDispatcher({ tasks, devices, link, feed, lifecycle, clock, log }: DispatcherDeps) {
  const chains = new Map<string, Promise<void>>();
  const kickQueued = new Set<string>();

  /** Runs `fn` after everything already queued for this device. */
  function serial(deviceId: string, fn: () => Promise<void>): Promise<void> {
    const prev = chains.get(deviceId) ?? Promise.resolve();
    const next = prev.then(fn).catch((err: unknown) => log.error({ err, deviceId }, "device dispatch failed"));
    chains.set(deviceId, next);
    void next.then(() => {
      if (chains.get(deviceId) === next) chains.delete(deviceId);
    });
    return next;
  }

  async function send(t: TaskRecord): Promise<void> {
    try {
      await link.send(t.deviceId, taskRequest(t, clock.now()));
    } catch (err) {
      // The task stays SENT; the unacknowledged-task sweep sends it again.
      log.warn({ err, taskId: t.id, deviceId: t.deviceId }, "publishing a task failed; it will be resent");
    }
  }

  async function dispatchQueued(deviceId: string): Promise<void> {
    // Most kicks (after an ack or a result) find nothing to do: one cheap read instead of a transaction.
    const work = await tasks.pendingWork(deviceId);
    for (;;) {
      if (!work.queued) break;
      const claimed = await tasks.claimForSend(deviceId, () => clock.now(), deliverableCount);
      for (const t of claimed) {
        feed.publish(toTaskProto(t));
        await send(t);
      }
      if (claimed.length < BURST_BATCH) break;
    }
    if (!work.cancels) return;
    for (const t of await tasks.pendingCancels(deviceId)) {
      await link.send(deviceId, cancelTask(t, clock.now()));
      await tasks.clearCancelPending(t.id);
    }
  }

  async function sendDesiredState(deviceId: string): Promise<void> {
    const stored = await devices.get(deviceId);
    if (!stored?.device.connectivity?.online || stored.desiredVersion === 0) return;
    const msg = desiredStateMessage(stored, clock.now());
    if (msg) await link.send(deviceId, msg);
  }

  async function takeNext(deviceId: string): Promise<{ task?: TaskRecord; retryAt?: Date }> {
    const now = clock.now();
    const open = (await tasks.openTasks(deviceId)).filter((t) => t.expireTime > now);
    const isDue = (t: TaskRecord) => t.state === State.QUEUED && (!t.nextAttemptTime || t.nextAttemptTime <= now);
    const sent = open.find((t) => t.state === State.SENT);
    const due = open.find(isDue);
    const waits = open.filter((t) => t.state === State.QUEUED && !isDue(t)).map((t) => t.nextAttemptTime!.getTime());
    const retryAt = waits.length > 0 ? new Date(Math.min(...waits)) : undefined;
    const handAgain = async (t: TaskRecord) => ({ task: (await tasks.update({ ...t, sendTime: now })) ?? t, retryAt });
    if (sent && (!due || sent.sequence < due.sequence)) return handAgain(sent);
    if (due) {
      // The device is asking, so it is reachable whatever its MQTT presence says; one task per ask.
      const [claimed] = await tasks.claimForSend(
        deviceId,
        () => clock.now(),
        (s) => Math.min(1, deliverableCount({ ...s, online: true })),
      );
      if (claimed) {
        feed.publish(toTaskProto(claimed));
        return { task: claimed, retryAt };
      }
    }
    if (sent) return handAgain(sent);
    return { retryAt };
  }

  return {
    /** Sends whatever may be sent to the device now. Coalesces bursts of kicks into one pass. */
    kick(deviceId: string): Promise<void> {
      if (kickQueued.has(deviceId)) return chains.get(deviceId) ?? Promise.resolve();
      kickQueued.add(deviceId);
      return serial(deviceId, async () => {
        kickQueued.delete(deviceId);
        await dispatchQueued(deviceId);
      });
    },

    /**
     * The device (re)connected — the broker says it is online, or it said Hello: its desired state
     * first, then the tasks it was sent but never acknowledged (it de-duplicates by task id), then
     * cancellations and queued tasks, all in sequence order. This is the contract's order (stated
     * on `Hello` in uplink.proto): a task is written for the state the owner set, so a queued
     * "brew" must not run before the desired "power on", and a queued task must not overtake an
     * older one the device never acknowledged. A device that publishes presence and then says
     * Hello gets its open tasks twice; the task ids make that harmless, and the second pass is
     * what reaches a device whose subscription was not in place yet at the first.
     */
    onHello(deviceId: string): Promise<void> {
      return serial(deviceId, async () => {
        await sendDesiredState(deviceId);
        for (const t of await tasks.openTasks(deviceId)) {
          if (t.state !== State.SENT) continue;
          const saved = await tasks.update({ ...t, sendTime: clock.now() });
          await send(saved ?? t);
        }
        await dispatchQueued(deviceId);
      });
    },

    /** Sends a task claimed when it was created (created SENT), after whatever is on its way to the device. */
    sendClaimed(t: TaskRecord): Promise<void> {
      return serial(t.deviceId, () => send(t));
    },

    /** Sends a SENT task again because its acknowledgement did not come. */
    resend(t: TaskRecord): Promise<void> {
      return serial(t.deviceId, async () => {
        const saved = await tasks.update({ ...t, sendTime: clock.now() });
        if (saved) await send(saved);
      });
    },

    /** "Give me my current task": the oldest open task, or NoPendingTask. */
    sendCurrentTask(deviceId: string): Promise<void> {
      return serial(deviceId, async () => {
        const oldest = (await tasks.openTasks(deviceId)).find((t) => t.state !== State.QUEUED || t.expireTime > clock.now());
        if (!oldest) return link.send(deviceId, noPendingTask(clock.now()));
        if (oldest.state !== State.QUEUED) return send(oldest);
        const r = await lifecycle.apply(oldest, { type: "send" }, (next, now) => {
          next.attempt += 1;
          next.sendTime = now;
          next.nextAttemptTime = undefined;
        });
        await send(r.task);
      });
    },

    sendDesiredState(deviceId: string): Promise<void> {
      return serial(deviceId, () => sendDesiredState(deviceId));
    },

    /**
     * The device asks over HTTP for its next task: the oldest task it has not acknowledged yet.
     * A SENT task is handed again (same attempt, like an MQTT resend: the device de-duplicates by
     * task id); otherwise the oldest due QUEUED task is claimed exactly as MQTT dispatch claims it
     * (under the device row lock, per the delivery policy, QUEUED → SENT with attempt + 1). Tasks
     * the device acknowledged (DELIVERED, RUNNING) are never handed out again. `retryAt` is when a
     * task waiting out a retry backoff becomes due, so a long poll knows when to look again.
     */
    takeNext(deviceId: string): Promise<{ task?: TaskRecord; retryAt?: Date }> {
      let out: { task?: TaskRecord; retryAt?: Date } = {};
      const run = serial(deviceId, async () => {
        out = await takeNext(deviceId);
      });
      return run.then(() => out);
    },

    /** Resolves when everything queued so far has been attempted (tests, shutdown). */
    async idle(): Promise<void> {
      while (chains.size > 0) await Promise.all([...chains.values()]);
    },
  };
}
