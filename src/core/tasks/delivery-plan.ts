import { DeliveryPolicy_Mode as Mode } from "../../../gen/tether/v1/device_pb.js";
import type { DeliverySnapshot } from "../ports/task-repository.js";

/** Most tasks sent to one device in one go in BURST mode; the rest follow on the next round. */
export const BURST_BATCH = 100;

/**
 * How many queued tasks may be sent to a device now, from its delivery policy and what is in
 * flight. Pure, so the rule is tested without a database or broker.
 */
export function deliverableCount(s: DeliverySnapshot): number {
  if (!s.online) return 0;
  switch (s.mode) {
    case Mode.ONE_UNTIL_ACKNOWLEDGED:
      return s.sent === 0 ? 1 : 0;
    case Mode.ONE_UNTIL_COMPLETED:
      return s.sent + s.delivered + s.running === 0 ? 1 : 0;
    default:
      return BURST_BATCH;
  }
}

/** What is in flight and waiting on a device while a batch of new tasks for it is decided. */
export interface SendSnapshot extends DeliverySnapshot {
  queued: number;
}

/**
 * Which of a device's new tasks (given by priority, in creation order) are sent in the very
 * transaction that creates them (created SENT, published after the commit) instead of waiting
 * for a dispatch pass: saves that pass its transaction. Only while nothing waits in the device's
 * queue (a new task must not overtake a queued one) and its delivery policy has room; taken
 * highest priority first, so a one-at-a-time device gets the most urgent of them and the rest
 * queue behind. Returns one flag per task, in the input order; `order` is the send order.
 */
export function sendAtCreate(s: SendSnapshot, priorities: readonly number[]): { send: boolean[]; order: number[] } {
  const order = priorities.map((_, i) => i).sort((a, b) => priorities[b]! - priorities[a]! || a - b);
  const snap = { ...s };
  const send = priorities.map(() => false);
  for (const i of order) {
    if (snap.queued === 0 && deliverableCount(snap) > 0) {
      send[i] = true;
      snap.sent++;
    } else snap.queued++;
  }
  return { send, order };
}
