import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./stack.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const RABBIT_BIN = process.env.TEST_RABBITMQ_BIN ?? "/usr/lib/rabbitmq/bin";

/** A RabbitMQ node of our own (never the system one), configured from deploy/rabbitmq/. */
export interface RabbitNode {
  nodeName: string;
  amqpUrl: string;
  /** MQTT over TLS (devices, client certificate login). */
  mqttsPort: number;
  /** Runs rabbitmqctl against this node. */
  ctl(...args: string[]): Promise<string>;
  /** Creates a device's user and permissions with deploy/rabbitmq/provision-device.sh. */
  provisionDevice(deviceId: string): Promise<void>;
  /** Stops the node (data kept) and starts it again on the same ports. `hard` kills it (SIGKILL) instead. */
  restart(opts?: { hard?: boolean; downMs?: number }): Promise<void>;
  stop(): Promise<void>;
  /** Deletes the node's files (after stop). */
  cleanup(): Promise<void>;
}

let counter = 0;

/**
 * Renders deploy/rabbitmq/rabbitmq.conf with the given TLS files, free loopback ports and a random
 * password, and starts a node in a temp directory (its own mnesia, logs, cookie and epmd name).
 */
export async function startRabbitNode(tls: { caFile: string; certFile: string; keyFile: string }): Promise<RabbitNode> {
  const dir = await mkdtemp(path.join(tmpdir(), "tether-rabbit-"));
  const [amqpPort, mqttsPort, distPort] = [await freePort(), await freePort(), await freePort()];
  const nodeName = `tether-test-${process.pid}-${++counter}@localhost`;
  const password = randomBytes(12).toString("hex");
  const home = path.join(dir, "home");
  await mkdir(home);
  await writeFile(path.join(home, ".erlang.cookie"), randomBytes(16).toString("hex"), { mode: 0o400 });
  const conf = renderConf(await readFile(path.join(ROOT, "deploy/rabbitmq/rabbitmq.conf"), "utf8"), {
    "listeners.ssl.default": `127.0.0.1:${amqpPort}`,
    "mqtt.listeners.ssl.default": `127.0.0.1:${mqttsPort}`,
    default_pass: password,
    "ssl_options.cacertfile": tls.caFile,
    "ssl_options.certfile": tls.certFile,
    "ssl_options.keyfile": tls.keyFile,
  });
  await writeFile(path.join(dir, "rabbitmq.conf"), conf);
  await writeFile(path.join(dir, "enabled_plugins"), await readFile(path.join(ROOT, "deploy/rabbitmq/enabled_plugins"), "utf8"));
  await writeFile(path.join(dir, "rabbitmq-env.conf"), "");
  const env = {
    ...process.env,
    HOME: home,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: path.join(dir, "rabbitmq.conf"),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"),
    RABBITMQ_CONF_ENV_FILE: path.join(dir, "rabbitmq-env.conf"),
    RABBITMQ_MNESIA_BASE: path.join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: path.join(dir, "log"),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
    ERL_EPMD_ADDRESS: "127.0.0.1",
  };
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const ctl = async (...args: string[]) => (await run(path.join(RABBIT_BIN, "rabbitmqctl"), ["-n", nodeName, ...args], { env, timeout: 120_000 })).stdout;

  async function start(): Promise<void> {
    const p = spawn(path.join(RABBIT_BIN, "rabbitmq-server"), [], { env, cwd: dir, detached: true, stdio: "ignore" });
    proc = p;
    exited = new Promise((resolve) => p.once("exit", () => resolve()));
    const deadline = Date.now() + 120_000;
    // The AMQPS listener opens last in the boot sequence: once it accepts TCP, the node is up.
    while (!(await canConnect(amqpPort))) {
      if (p.exitCode !== null) throw new Error(`rabbitmq node ${nodeName} exited during startup (code ${p.exitCode}); see ${dir}/log`);
      if (Date.now() > deadline) throw new Error(`rabbitmq node ${nodeName} did not start in 120 s; see ${dir}/log`);
      await new Promise((r) => setTimeout(r, 250));
    }
    await ctl("await_startup", "--timeout", "60");
  }

  async function stop(hard = false): Promise<void> {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    if (hard) {
      process.kill(-p.pid!, "SIGKILL");
    } else {
      await ctl("stop").catch(() => process.kill(-p.pid!, "SIGTERM"));
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (p.exitCode === null && p.signalCode === null) process.kill(-p.pid!, "SIGKILL");
    await exited;
    // epmd may keep the old registration for a moment; wait until the port is free again.
    const deadline = Date.now() + 10_000;
    while ((await canConnect(amqpPort)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  }

  const killOnExit = () => {
    if (proc && proc.exitCode === null) {
      try {
        process.kill(-proc.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.once("exit", killOnExit);

  await start();
  return {
    nodeName,
    // AMQPS only (deploy/rabbitmq/rabbitmq.conf); the test PKI's server certificate has IP 127.0.0.1.
    amqpUrl: `amqps://tether:${password}@127.0.0.1:${amqpPort}`,
    mqttsPort,
    ctl,
    async provisionDevice(deviceId) {
      await run("sh", [path.join(ROOT, "deploy/rabbitmq/provision-device.sh"), deviceId, "-n", nodeName], {
        env: { ...env, RABBITMQCTL: path.join(RABBIT_BIN, "rabbitmqctl") },
        timeout: 120_000,
      });
    },
    async restart(opts = {}) {
      await stop(opts.hard);
      if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
      await start();
    },
    stop: () => stop(),
    async cleanup() {
      await stop();
      process.removeListener("exit", killOnExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Replaces the values of the given `key = value` lines (each key must be present). */
export function renderConf(template: string, values: Record<string, string>): string {
  let out = template;
  for (const [key, value] of Object.entries(values)) {
    const re = new RegExp(`^${key.replaceAll(".", "\\.")}\\s*=.*$`, "m");
    if (!re.test(out)) throw new Error(`deploy/rabbitmq/rabbitmq.conf has no ${key}`);
    out = out.replace(re, `${key} = ${value}`);
  }
  return out;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
