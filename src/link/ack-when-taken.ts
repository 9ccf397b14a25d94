import type { MqttClient } from "mqtt";

/** The slice of mqtt.js's client this file reaches into (`_sendPacket` is private in its types). */
interface PacketSender {
  _sendPacket(packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]): void;
}

/**
 * Makes mqtt.js send the PUBACK for an incoming QoS 1 message only once `take` has it safe (for
 * Tether: in the uplink intake, i.e. durably queued in production), instead of as soon as the
 * message is read. Until then the broker keeps the message: a replica that dies, or an intake
 * that cannot take it, loses nothing the broker acknowledged to a device.
 *
 * mqtt.js reads the next packet only after `handleMessage`'s callback, and sends the PUBACK in
 * it; waiting there would take one message at a time. So the callback runs at once (the next
 * packet is read while this one is taken), and the PUBACK itself waits: it is held back, then
 * written in arrival order (MQTT requires PUBACKs in the order of the PUBLISHes) once `take`
 * resolved. A PUBACK whose connection is gone is dropped: a kept session gets the message again
 * from the broker, and a clean session has already forgotten it.
 *
 * `take` is called for every message, QoS 0 included; for QoS 1 its promise gates the PUBACK.
 * It should not reject (retry inside it); a rejection leaves the message unacknowledged.
 */
export function ackWhenTaken(client: MqttClient, take: (topic: string, payload: Buffer) => Promise<void>): { settled(): Promise<void> } {
  const sender = client as unknown as PacketSender;
  const send = sender._sendPacket.bind(client);
  const taking = new Map<number, Promise<void>>();
  let order: Promise<unknown> = Promise.resolve();
  let connection = 0;
  client.on("connect", () => connection++);
  client.on("close", () => connection++);

  client.handleMessage = (packet, callback) => {
    const taken = take(packet.topic, packet.payload as Buffer);
    if (packet.qos === 1 && packet.messageId !== undefined) taking.set(packet.messageId, taken);
    callback();
  };

  sender._sendPacket = (packet, cb, ...rest) => {
    const taken = packet.cmd === "puback" && packet.messageId !== undefined ? taking.get(packet.messageId) : undefined;
    if (!taken) return send(packet, cb, ...rest);
    taking.delete(packet.messageId!);
    const on = connection;
    cb?.(); // lets mqtt.js read the next packet now
    order = order
      .then(() => taken)
      .then(
        () => {
          if (on === connection && client.connected) send(packet);
        },
        () => {}, // not taken: no PUBACK, the broker keeps the message for a kept session
      );
  };

  return {
    /** Resolves once every PUBACK held back so far is written (or dropped). */
    settled: () => order.then(() => undefined),
  };
}
