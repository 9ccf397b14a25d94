/**
 * The device SDK over HTTP, for devices that cannot keep an MQTT connection: the same envelopes
 * and the same at-most-once execution as {@link TetherDevice}, over DeviceGatewayService.
 *
 * A sleepy device wakes, calls `poll({ listenSeconds })` (a long poll: Tether answers as soon as
 * a task is queued, or empty when the listen time ends), executes what it got (ack, progress and
 * result go out in order through {@link HttpUplink}), and sleeps again. `run()` does that in a loop.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { pino, type Logger } from "pino";
import type { DesiredState, TaskRequest } from "../../gen/tether/device/v1/downlink_pb.js";
import { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { SampleSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { HttpUplink } from "./http-uplink.js";
import { TaskExecutor, type TaskHandler } from "./task-executor.js";
import type { ReportedStateInit, SampleInit } from "./types.js";

export interface HttpDeviceOptions {
  /** Tether's API, e.g. `https://tether.example.com:8443`. */
  baseUrl: string;
  /** The certificate CN; Tether takes the device id from the certificate, this is for logs. */
  deviceId: string;
  /** PEM client certificate and key (OU `devices`) and the CA of Tether's server certificate. */
  cert: string;
  key: string;
  ca: string;
  handler: TaskHandler;
  /** Applies a desired state; only versions newer than the last one applied arrive here. */
  onDesiredState?(state: DesiredState): void | Promise<void>;
  log?: Logger;
  /** How many task ids to remember for de-duplication. Default 1000. */
  resultCacheSize?: number;
}

export class HttpDevice {
  /** How many times each task id was executed; at-most-once means no value above 1. */
  readonly executions: Map<string, number>;
  readonly client: Client<typeof DeviceGatewayService>;
  private readonly uplink: HttpUplink;
  private readonly executor: TaskExecutor;
  private readonly log: Logger;
  private readonly session: Http2SessionManager;
  private desiredVersion = 0n;
  private stateVersion = 0n;

  constructor(readonly opts: HttpDeviceOptions) {
    this.log = (opts.log ?? pino({ level: "silent" })).child({ deviceId: opts.deviceId, transport: "http" });
    // HTTP/2: one TLS session carries the parked poll and the uplink side by side.
    const nodeOptions = { cert: opts.cert, key: opts.key, ca: opts.ca };
    this.session = new Http2SessionManager(opts.baseUrl, {}, nodeOptions);
    this.client = createClient(
      DeviceGatewayService,
      createConnectTransport({ baseUrl: opts.baseUrl, httpVersion: "2", nodeOptions, sessionManager: this.session }),
    );
    this.uplink = new HttpUplink(this.client, this.log);
    this.executor = new TaskExecutor({
      handler: opts.handler,
      log: this.log,
      cacheSize: opts.resultCacheSize ?? 1000,
      send: (body) => void this.uplink.send(body),
    });
    this.executions = this.executor.executions;
  }

  /**
   * Asks for what is pending, listening up to `listenSeconds` (at most 60) if nothing is. A task
   * is acknowledged and executed (once, whatever the number of deliveries); it is also returned.
   */
  async poll(opts: { listenSeconds?: number; signal?: AbortSignal } = {}): Promise<TaskRequest | undefined> {
    const listen = opts.listenSeconds ?? 0;
    const res = await this.client.pollDownlink(
      { listenDuration: { seconds: BigInt(Math.floor(listen)), nanos: Math.round((listen % 1) * 1e9) }, desiredVersion: this.desiredVersion },
      // The server answers within the listen time; allow for the network on top.
      { signal: opts.signal, timeoutMs: (Math.min(listen, 60) + 30) * 1000 },
    );
    let task: TaskRequest | undefined;
    for (const d of res.downlinks) {
      if (d.body.case === "desiredState" && d.body.value.version > this.desiredVersion) {
        this.desiredVersion = d.body.value.version;
        await this.opts.onDesiredState?.(d.body.value);
      } else if (d.body.case === "task" && d.body.value.taskId) {
        task = d.body.value;
        this.executor.receive(task);
      }
    }
    return task;
  }

  /** Polls in a loop until `signal` aborts; a failed poll is retried after a pause. */
  async run(opts: { listenSeconds?: number; signal: AbortSignal }): Promise<void> {
    while (!opts.signal.aborted) {
      try {
        await this.poll(opts);
      } catch (err) {
        if (opts.signal.aborted) break;
        this.log.warn({ err: (err as Error).message }, "poll failed; retrying");
        await sleep(1000, undefined, { signal: opts.signal }).catch(() => {});
      }
    }
  }

  /** Sends measurements; a sample without `time` is stamped now. Resolves once Tether stored them (or queued them durably). */
  sendTelemetry(samples: SampleInit[]): Promise<void> {
    const stamped = samples.map((init) => {
      const sample = create(SampleSchema, init);
      sample.time ??= timestampNow();
      return sample;
    });
    return this.uplink.send({ case: "telemetry", value: { samples: stamped } }, { receipt: true });
  }

  /** Reports the device's state with an increasing version (µs since the epoch, at least last + 1). */
  reportState(state: ReportedStateInit): Promise<void> {
    const floor = BigInt(Date.now()) * 1000n;
    const version = state.version ?? (this.stateVersion + 1n > floor ? this.stateVersion + 1n : floor);
    if (version > this.stateVersion) this.stateVersion = version;
    return this.uplink.send({ case: "state", value: { ...state, version } });
  }

  /** Resolves once every queued uplink (acks, progress, results) has been taken by Tether. */
  flush(): Promise<void> {
    return this.uplink.flush();
  }

  /** Stops executing and sending, and closes the connection. */
  close(): void {
    this.executor.stop();
    this.uplink.close();
    this.session.abort();
  }
}
