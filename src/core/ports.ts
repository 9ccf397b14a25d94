import type { Downlink } from "../../gen/tether/device/v1/downlink_pb.js";

/**
 * The way down to devices. The MQTT bridge implements it (`src/link/mqtt-bridge.ts`); `send`
 * resolves once the broker has taken the message (QoS 1 PUBACK), not when the device has it:
 * device acknowledgements arrive as uplink.
 */
export interface DeviceLink {
  send(deviceId: string, message: Downlink): Promise<void>;
}

/**
 * A fan-out of change notifications (task changed, device changed) to every watcher in every
 * replica. In-process in embedded mode (`src/bus/memory-feed.ts`); RabbitMQ in production.
 * Delivery is best effort: watchers re-read the store when they need certainty.
 */
export interface ChangeFeed<T> {
  publish(item: T): void;
  /** Calls `handler` for every item published after this call; returns the unsubscribe function. */
  subscribe(handler: (item: T) => void): () => void;
}

/** Counters for things worth alerting on (dropped uplink, late events). Exported as metrics later. */
export interface Counters {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
}
