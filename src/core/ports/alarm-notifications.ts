import type { AlarmChange } from "../alarms/alarm-record.js";

/**
 * Where notified alarm events go: written by the alarm store inside the transaction of the alarm
 * change itself (`tx` is the store's transaction handle), so an event is recorded exactly when its
 * change commits, never for a change that rolled back. The store passes only changes the rule's
 * policy notifies (see `notifies`). Implemented by a table of pending notifications
 * (`src/store/alarm-notification-table.ts`); the webhook outbox is the delivery channel behind it.
 */
export interface AlarmNotifications<Tx> {
  enqueue(tx: Tx, changes: readonly AlarmChange[], now: Date): Promise<void>;
}
