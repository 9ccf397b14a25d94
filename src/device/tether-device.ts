/**
 * The device side of Tether's wire protocol: a small SDK any Node device (or simulator) can use.
 *
 * It owns the MQTT session and the protocol rules so that product code only writes a command handler:
 * - a persistent session (`clean: false`) so QoS 1 downlink sent while the device is briefly offline is
 *   redelivered by the broker on reconnect;
 * - MQTT 3.1.1, because the embedded broker (aedes) and RabbitMQ's MQTT plugin speak nothing newer;
 * - a retained `offline` last will and a retained `online` on every connect, so Tether and any observer
 *   always see the current presence, including after a crash or power loss; a graceful close says
 *   `offline:clean` first, so Tether can tell a goodbye from a lost connection on any broker;
 * - a tiny heartbeat uplink when the device has said nothing for `heartbeatIntervalMs`, so a quiet
 *   device never looks dead, even on a broker whose keepalives Tether cannot see;
 * - a Hello after every connect asking for pending tasks, which covers anything sent while the session
 *   was lost (broker restart, expired session);
 * - at-most-once execution of redelivered tasks (see {@link TaskExecutor});
 * - telemetry kept until Tether's end-to-end receipt and resent until then (see {@link TelemetryOutbox}),
 *   so a broker crash loses no sample.
 *
 * Topics come from `src/link/topics.ts`; the broker only lets a device use its own.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import mqtt, { type MqttClient } from "mqtt";
import { pino, type Logger } from "pino";
import { type CertificateUpdate, type Downlink, DownlinkSchema, type DesiredState, type TaskRequest } from "../../gen/tether/device/v1/downlink_pb.js";
import { SampleSchema, UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { downlinkTopic, presenceTopic, PRESENCE_OFFLINE, PRESENCE_OFFLINE_CLEAN, PRESENCE_ONLINE, uplinkTopic } from "../protocol/topics.js";
import { enableNoDelay } from "../protocol/mqtt-no-delay.js";
import { TaskExecutor, type UplinkBody } from "./task-executor.js";
import { TelemetryOutbox } from "./telemetry-outbox.js";
import type { ConnectDeviceOptions, ReportedStateInit, SampleInit, TetherDeviceEvents } from "./types.js";

export type * from "./types.js";
export type { CommandResultInit, TaskContext } from "./task-executor.js";
export { DeviceFailure, DeviceRejection } from "./errors.js";

/** A connected device. Create it with {@link connectDevice}. */
export class TetherDevice extends EventEmitter<TetherDeviceEvents> {
  /** How many times each task id was executed; at-most-once means no value above 1. */
  readonly executions: Map<string, number>;
  private readonly executor: TaskExecutor;
  private readonly outbox: TelemetryOutbox | undefined;
  private readonly log: Logger;
  private stateVersion = 0n;
  private desiredVersion = -1n;
  private desiredChain: Promise<void> = Promise.resolve();
  private queryWaiters: { resolve(task: TaskRequest | undefined): void; reject(err: Error): void }[] = [];
  private renewals = new Map<string, { resolve(update: CertificateUpdate): void; reject(err: Error): void }>();
  private closed = false;
  private wasConnected = false;
  private lastUplinkAt = Date.now();
  private heartbeat: NodeJS.Timeout | undefined;
  /** Heartbeats sent so far (for tests and diagnostics). */
  heartbeats = 0;

  /** @internal use {@link connectDevice} */
  constructor(
    private readonly client: MqttClient,
    readonly deviceId: string,
    private readonly opts: ConnectDeviceOptions,
  ) {
    super();
    this.log = (opts.log ?? pino({ level: "silent" })).child({ deviceId });
    this.executor = new TaskExecutor({
      handler: (command, ctx) => opts.handler(command, { ...ctx, device: this }),
      log: this.log,
      cacheSize: opts.resultCacheSize ?? 1000,
      send: (body) => void this.send(body).catch((err: Error) => this.log.warn({ err: err.message }, "uplink not sent")),
      onTask: (request) => this.emit("task", request),
      onResult: (result) => this.emit("result", result),
    });
    this.executions = this.executor.executions;
    const receipts = opts.telemetryReceipts ?? {};
    this.outbox = receipts === false ? undefined : new TelemetryOutbox(receipts, (payload) => this.publishNow(payload), this.log);
    client.on("message", (topic, payload) => {
      if (topic === downlinkTopic(deviceId)) this.onDownlink(payload);
    });
    client.on("close", () => {
      if (this.wasConnected) this.emit("disconnect");
      this.wasConnected = false;
    });
    client.on("error", (err) => this.log.warn({ err: err.message }, "mqtt error"));
    const every = opts.heartbeatIntervalMs ?? 60_000;
    if (every > 0) {
      // Checked at a quarter of the interval: a heartbeat is due at most that late.
      this.heartbeat = setInterval(() => this.beat(every), Math.max(10, Math.floor(every / 4)));
      this.heartbeat.unref();
    }
  }

  /** Sends a heartbeat if nothing else went up for `every` ms: QoS 0 and no id, it is only "still here". */
  private beat(every: number): void {
    if (this.closed || !this.client.connected || Date.now() - this.lastUplinkAt < every) return;
    this.lastUplinkAt = Date.now();
    this.heartbeats++;
    const payload = Buffer.from(toBinary(UplinkSchema, create(UplinkSchema, { body: { case: "heartbeat", value: {} } })));
    this.client.publish(uplinkTopic(this.deviceId), payload, { qos: 0 });
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /**
   * Reports the device's state. Without a `version`, uses max(last + 1, now in µs): versions keep
   * increasing across reboots, so Tether does not ignore the first report after a restart.
   */
  reportState(state: ReportedStateInit): Promise<void> {
    const floor = BigInt(Date.now()) * 1000n;
    const next = this.stateVersion + 1n > floor ? this.stateVersion + 1n : floor;
    const version = state.version ?? next;
    this.stateVersion = version > this.stateVersion ? version : this.stateVersion;
    return this.send({ case: "state", value: { ...state, version } });
  }

  /**
   * Sends measurements; a sample without `time` is stamped now. Resolves once Tether has stored
   * them (its receipt); until then the batch is kept and resent. With `telemetryReceipts: false`,
   * resolves on the broker's PUBACK instead.
   */
  sendTelemetry(samples: SampleInit[]): Promise<void> {
    const stamped = samples.map((init) => {
      const sample = create(SampleSchema, init);
      sample.time ??= timestampNow();
      return sample;
    });
    const body: UplinkBody = { case: "telemetry", value: { samples: stamped } };
    if (!this.outbox) return this.send(body);
    const uplink = create(UplinkSchema, { messageId: randomUUID(), time: timestampNow(), receiptRequested: true, body });
    return this.outbox.add(uplink.messageId, Buffer.from(toBinary(UplinkSchema, uplink)));
  }

  /** Telemetry batches sent but not yet receipted by Tether, and how many were resent so far. */
  telemetryBacklog(): { pending: number; resent: number } {
    return { pending: this.outbox?.size() ?? 0, resent: this.outbox?.resent ?? 0 };
  }

  /** Resolves once every telemetry batch sent so far is receipted (at once without receipts). */
  telemetryStored(): Promise<void> {
    return this.outbox?.whenEmpty() ?? Promise.resolve();
  }

  /**
   * Asks Tether for the oldest pending task. Resolves with it (it is also executed as usual) or with
   * undefined when nothing is pending; rejects if no answer arrives in time.
   */
  requestCurrentTask(): Promise<TaskRequest | undefined> {
    const timeoutMs = this.opts.queryTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => waiter.reject(new Error(`no answer to CurrentTaskQuery within ${timeoutMs} ms`)), timeoutMs);
      const settle = () => {
        clearTimeout(timer);
        this.queryWaiters = this.queryWaiters.filter((w) => w !== waiter);
      };
      const waiter = {
        resolve: (task: TaskRequest | undefined) => (settle(), resolve(task)),
        reject: (err: Error) => (settle(), reject(err)),
      };
      this.queryWaiters.push(waiter);
      this.send({ case: "currentTaskQuery", value: {} }).catch((err: Error) => this.log.warn({ err: err.message }, "query not sent"));
    });
  }

  /**
   * Asks Tether to sign a CSR made with a new key (the key stays here). Resolves with the new
   * certificate, which is valid at once while the current one stays valid until it expires: save
   * both, and switch at the next reconnect. Rejects with Tether's reason (e.g. a weak key).
   */
  renewCertificate(csrPem: string, opts: { timeoutMs?: number } = {}): Promise<CertificateUpdate> {
    const requestId = randomUUID();
    const timeoutMs = opts.timeoutMs ?? this.opts.queryTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(() => reject(new Error(`no certificate within ${timeoutMs} ms`))), timeoutMs);
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        this.renewals.delete(requestId);
        fn();
      };
      this.renewals.set(requestId, {
        resolve: (u) => settle(() => (u.error ? reject(new Error(`certificate renewal refused: ${u.error}`)) : resolve(u))),
        reject: (err) => settle(() => reject(err)),
      });
      this.send({ case: "certificateRenewal", value: { requestId, csr: csrPem } }).catch((err: Error) => this.renewals.get(requestId)?.reject(err));
    });
  }

  /**
   * Ends the session. Graceful: publishes retained `offline` and disconnects (no will). `abrupt`
   * destroys the socket without DISCONNECT, like a crash or power loss, so the broker fires the will.
   * Either way the broker keeps the persistent session and queues QoS 1 downlink for the next connect.
   */
  async close(opts: { abrupt?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.executor.stop();
    this.outbox?.close();
    for (const waiter of [...this.queryWaiters]) waiter.reject(new Error("device closed"));
    for (const waiter of [...this.renewals.values()]) waiter.reject(new Error("device closed"));
    if (opts.abrupt) {
      await this.client.endAsync(true);
      return;
    }
    if (!this.client.connected) {
      await this.client.endAsync(true); // nothing to say goodbye to; stops the reconnect loop
      return;
    }
    this.client.publish(presenceTopic(this.deviceId), PRESENCE_OFFLINE_CLEAN, { qos: 1, retain: true });
    // end(false) waits for in-flight PUBACKs (the `offline` above included), then sends DISCONNECT, which
    // discards the will. A broker that stops answering must not hang shutdown: cut the socket after 2 s.
    const ended = this.client.endAsync(false).then(() => false);
    if (await Promise.race([ended, sleep(2_000, true, { ref: false })])) this.client.stream?.destroy();
  }

  /** @internal Runs on every connect: presence, subscription, then Hello (so pending tasks find us subscribed). */
  async onConnected(): Promise<void> {
    const { client, deviceId } = this;
    this.wasConnected = true;
    client.publish(presenceTopic(deviceId), PRESENCE_ONLINE, { qos: 1, retain: true });
    await client.subscribeAsync(downlinkTopic(deviceId), { qos: 1 });
    await this.send({ case: "hello", value: { firmwareVersion: this.opts.firmwareVersion ?? "", wantPendingTasks: true } });
    // Whatever the broker or Tether lost while we were away goes out again (Tether stores it once).
    this.outbox?.resendAll();
    this.log.debug("device connected");
    this.emit("connect");
    await this.opts.onConnect?.(this);
  }

  private send(body: UplinkBody): Promise<void> {
    if (this.closed) return Promise.resolve();
    const uplink = create(UplinkSchema, { messageId: randomUUID(), time: timestampNow(), body });
    const payload = Buffer.from(toBinary(UplinkSchema, uplink));
    this.lastUplinkAt = Date.now();
    return this.client.publishAsync(uplinkTopic(this.deviceId), payload, { qos: 1 }).then(() => undefined);
  }

  /** Publishes an outbox payload if connected (else the next connect resends it). */
  private publishNow(payload: Buffer): boolean {
    if (this.closed || !this.client.connected) return false;
    this.lastUplinkAt = Date.now();
    this.client.publish(uplinkTopic(this.deviceId), payload, { qos: 1 }, (err) => {
      if (err) this.log.debug({ err: err.message }, "telemetry publish failed; it is resent");
    });
    return true;
  }

  /** Malformed input is logged and dropped: one bad message must never take a device offline. */
  private onDownlink(payload: Buffer): void {
    let downlink: Downlink;
    try {
      downlink = fromBinary(DownlinkSchema, payload);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, bytes: payload.length }, "malformed downlink dropped");
      return;
    }
    const body = downlink.body;
    switch (body.case) {
      case "task":
        if (!body.value.taskId) {
          this.log.warn({ messageId: downlink.messageId }, "task without task_id dropped");
          return;
        }
        this.executor.receive(body.value);
        this.answerQuery(body.value);
        return;
      case "cancel":
        this.executor.cancel(body.value.taskId, body.value.reason);
        return;
      case "noPendingTask":
        this.answerQuery(undefined);
        return;
      case "desiredState":
        this.onDesiredState(body.value);
        return;
      case "certificate":
        this.renewals.get(body.value.requestId)?.resolve(body.value);
        return;
      case "certificateExpiring":
        this.log.info({ serialNumber: body.value.serialNumber }, "certificate expires soon");
        this.emit("certificateExpiring", body.value);
        return;
      case "receipt":
        this.outbox?.receipted(body.value.messageIds);
        return;
      default:
        this.log.warn({ messageId: downlink.messageId }, "downlink without a known body dropped");
    }
  }

  private answerQuery(task: TaskRequest | undefined): void {
    for (const waiter of [...this.queryWaiters]) waiter.resolve(task);
  }

  /** Applies desired states one at a time, newest-wins: an older version (redelivery, reordering) is ignored. */
  private onDesiredState(state: DesiredState): void {
    if (state.version <= this.desiredVersion) {
      this.log.debug({ version: state.version.toString() }, "stale desired state ignored");
      return;
    }
    this.desiredVersion = state.version;
    const apply = this.opts.onDesiredState;
    if (!apply) return;
    this.desiredChain = this.desiredChain.then(() => apply(state, this)).catch((err: unknown) => this.log.error({ err }, "applying desired state failed"));
  }
}

/**
 * Connects a device and resolves once it is subscribed and has sent its Hello. Rejects (and gives up)
 * on an error before the first connect — a refused certificate or client id is a configuration
 * problem, not something retrying fixes; an unreachable broker is retried silently by mqtt.js.
 */
export function connectDevice(opts: ConnectDeviceOptions): Promise<TetherDevice> {
  const client = mqtt.connect(opts.url, {
    clientId: opts.deviceId,
    clean: false,
    protocolVersion: 4,
    keepalive: opts.keepaliveS ?? 60,
    reconnectPeriod: opts.reconnectPeriodMs ?? 1_000,
    connectTimeout: 10_000,
    resubscribe: false, // onConnected subscribes itself, after which it sends Hello
    cert: opts.cert,
    key: opts.key,
    ca: opts.ca,
    will: { topic: presenceTopic(opts.deviceId), payload: Buffer.from(PRESENCE_OFFLINE), qos: 1, retain: true },
  });
  enableNoDelay(client);
  const device = new TetherDevice(client, opts.deviceId, opts);
  const log = opts.log?.child({ deviceId: opts.deviceId });
  return new Promise((resolve, reject) => {
    let first = true;
    const onEarlyError = (err: Error) => {
      client.end(true);
      reject(err);
    };
    client.once("error", onEarlyError);
    client.on("connect", () => {
      const wasFirst = first;
      first = false;
      client.off("error", onEarlyError);
      device.onConnected().then(
        () => wasFirst && resolve(device),
        (err: Error) => {
          log?.warn({ err: err.message }, "connect handshake failed");
          if (wasFirst) {
            client.end(true);
            reject(err);
          }
        },
      );
    });
  });
}
