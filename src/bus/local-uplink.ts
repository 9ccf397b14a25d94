import { createKeyedQueue } from "../core/keyed-queue.js";
import type { UplinkHandler, UplinkIntake } from "../core/ports/uplink-intake.js";

/**
 * The embedded uplink intake: processed in this process, one at a time per device and concurrently
 * across devices. A processing failure is logged, not thrown at the transport: a device cannot make
 * its transport fail by sending something the core refuses.
 */
export function createLocalUplink(handler: UplinkHandler, onError: (err: unknown, deviceId: string) => void): UplinkIntake {
  const queue = createKeyedQueue(onError);
  return {
    submit: (item) => queue.push(item.deviceId, () => handler.process(item)),
    drain: () => queue.drain(),
  };
}
