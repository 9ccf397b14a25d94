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
