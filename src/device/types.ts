/**
 * The types of the device SDK's surface, apart from the class itself: what a product's code supplies
 * (handler, callbacks, connection settings) and what it may listen to. Re-exported by
 * `tether-device.ts`, which is the module to import.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import type { CertificateExpiring, DesiredState, TaskRequest } from "../../gen/tether/device/v1/downlink_pb.js";
import type { ReportedStateSchema, SampleSchema, TaskResult } from "../../gen/tether/device/v1/uplink_pb.js";
import type { Command } from "../../gen/tether/v1/command_pb.js";
import type { CommandResultInit, TaskContext } from "./task-executor.js";
import type { TelemetryOutboxOptions } from "./telemetry-outbox.js";
import type { TetherDevice } from "./tether-device.js";

export type ReportedStateInit = MessageInitShape<typeof ReportedStateSchema>;
export type SampleInit = MessageInitShape<typeof SampleSchema>;

/** What a handler gets: the task's context plus the device, to report state or telemetry while working. */
export interface DeviceTaskContext extends TaskContext {
  device: TetherDevice;
}

/** Executes one command; throw `DeviceRejection` or `DeviceFailure` for unhappy endings. */
export type CommandHandler = (command: Command, ctx: DeviceTaskContext) => Promise<CommandResultInit> | CommandResultInit;

export interface ConnectDeviceOptions {
  /** `mqtts://host:port` */
  url: string;
  /** Must equal the certificate's CN: the broker refuses anything else. */
  deviceId: string;
  /** PEM client certificate, key and the CA that signed the broker's certificate. */
  cert: string;
  key: string;
  ca: string;
  handler: CommandHandler;
  log?: Logger;
  firmwareVersion?: string;
  /** How many task ids to remember for de-duplication. Default 1000. */
  resultCacheSize?: number;
  /** Applies a desired state; versions not above the last one applied are dropped before this is called. */
  onDesiredState?(state: DesiredState, device: TetherDevice): void | Promise<void>;
  /** Runs after every (re)connect once subscribed and the Hello is sent, e.g. to report the current state. */
  onConnect?(device: TetherDevice): void | Promise<void>;
  /** Default 1000 ms. */
  reconnectPeriodMs?: number;
  /**
   * MQTT keepalive, s: the broker gives the device up after 1.5 times this without a packet (and
   * publishes its last will). Default 60.
   */
  keepaliveS?: number;
  /**
   * A heartbeat uplink goes out after this long without any other uplink, so that Tether, which
   * cannot see keepalives on an external broker, keeps `last_seen_time` fresh. Keep it at or
   * below Tether's `TETHER_LIVENESS_INTERVAL_S`. 0 sends none. Default 60,000 ms.
   */
  heartbeatIntervalMs?: number;
  /** How long `requestCurrentTask` waits for Tether's answer. Default 10 s. */
  queryTimeoutMs?: number;
  /**
   * Telemetry store-and-forward (on by default): each batch is kept until Tether's receipt says it
   * is stored, and resent after a reconnect or when no receipt came within `timeoutMs`. `false`:
   * fire and forget (a sample the broker loses in a crash is gone).
   */
  telemetryReceipts?: false | TelemetryOutboxOptions;
}

export interface TetherDeviceEvents {
  connect: [];
  disconnect: [];
  /** A new task id arrived (not fired for duplicates). */
  task: [TaskRequest];
  /** A task ended and its result was sent (not fired for re-sent cached results). */
  result: [TaskResult];
  /** Tether warns that the device's newest certificate expires soon: call `renewCertificate`. */
  certificateExpiring: [CertificateExpiring];
}
