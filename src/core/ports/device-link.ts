import type { Downlink } from "../../../gen/tether/device/v1/downlink_pb.js";

/**
 * The way down to devices. The MQTT bridge implements it (`src/link/mqtt-bridge.ts`); `send`
 * resolves once the broker has taken the message (QoS 1 PUBACK), not when the device has it:
 * device acknowledgements arrive as uplink.
 */
export interface DeviceLink {
  send(deviceId: string, message: Downlink): Promise<void>;
}
