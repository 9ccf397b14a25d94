import { type ChildProcess, spawn } from "node:child_process";
import { webcrypto } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { freePort } from "./stack.js";

/** The broker configuration shipped in deploy/; the tests run exactly these files. */
export const MOSQUITTO_DEPLOY_DIR = path.resolve(import.meta.dirname, "../../deploy/mosquitto");
const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? "/usr/sbin/mosquitto";

export interface MosquittoFiles {
  /** PEM files the listener uses: `ca.crt`, `server.crt`, `server.key`, `crl.pem` (Tether's certs dir layout). */
  certsDir: string;
  /** The listener's certificate and key in `certsDir`. @default "server.crt", "server.key" */
  cert?: string;
  key?: string;
}

export interface RunningMosquitto {
  port: number;
  url: string;
  /** Everything the broker logged so far. */
  output(): string;
  /** Sends SIGHUP: Mosquitto rereads its configuration, ACL and CRL. */
  reload(): void;
  /** Stops the broker (SIGTERM, or SIGKILL when `hard`), waits `downMs`, starts it again on the same port and data. */
  restart(opts?: { hard?: boolean; downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `/usr/sbin/mosquitto` from deploy/mosquitto/mosquitto.conf and its ACL on a free port.
 * Only the paths, the listener port and the run-as user are rewritten (into a temp copy); every
 * other directive is the shipped one, so the tests check the configuration operators deploy.
 */
export async function startMosquitto(files: MosquittoFiles): Promise<RunningMosquitto> {
  const dir = await mkdtemp(path.join(tmpdir(), "tether-mosquitto-"));
  await mkdir(path.join(dir, "data"));
  const port = await freePort();
  const conf = (await readFile(path.join(MOSQUITTO_DEPLOY_DIR, "mosquitto.conf"), "utf8"))
    .replace(/^listener \d+.*$/m, `listener ${port} 127.0.0.1`)
    .replace(/^persistence_location .*$/m, `persistence_location ${dir}/data/`)
    .replace(/^acl_file .*$/m, `acl_file ${path.join(MOSQUITTO_DEPLOY_DIR, "acl")}`)
    .replace(/^cafile .*$/m, `cafile ${path.join(files.certsDir, "ca.crt")}`)
    .replace(/^certfile .*$/m, `certfile ${path.join(files.certsDir, files.cert ?? "server.crt")}`)
    .replace(/^keyfile .*$/m, `keyfile ${path.join(files.certsDir, files.key ?? "server.key")}`)
    .replace(/^crlfile .*$/m, `crlfile ${path.join(files.certsDir, "crl.pem")}`);
  // As root, Mosquitto drops to user "mosquitto", which cannot read keys in a temp dir: stay as we are.
  const confPath = path.join(dir, "mosquitto.conf");
  await writeFile(confPath, `user ${process.getuid?.() === 0 ? "root" : (process.env.USER ?? "mosquitto")}\n${conf}`);

  let output = "";
  let child!: ChildProcess;
  let exited!: Promise<void>;
  const launch = async () => {
    child = spawn(MOSQUITTO_BIN, ["-c", confPath], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
    child.stderr?.on("data", (b: Buffer) => (output += b.toString()));
    const c = child;
    exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    const deadline = Date.now() + 15_000;
    while (!(await portOpen(port))) {
      if (c.exitCode !== null || Date.now() > deadline) {
        c.kill("SIGKILL");
        await rm(dir, { recursive: true, force: true });
        throw new Error(`mosquitto did not start on ${port}:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await launch();
  return {
    port,
    url: `mqtts://127.0.0.1:${port}`,
    output: () => output,
    reload: () => child.kill("SIGHUP"),
    async restart(opts = {}) {
      child.kill(opts.hard ? "SIGKILL" : "SIGTERM");
      await exited;
      await new Promise((r) => setTimeout(r, opts.downMs ?? 0));
      await launch();
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Writes `certsDir/crl.pem`: a CRL signed by the CA in `certsDir` listing `revokedSerials` (hex).
 * Stands in for Tether's certificate service, which writes the same file in production.
 */
export async function writeCrl(certsDir: string, revokedSerials: string[]): Promise<void> {
  const caCert = new x509.X509Certificate(await readFile(path.join(certsDir, "ca.crt"), "utf8"));
  const keyDer = x509.PemConverter.decodeFirst(await readFile(path.join(certsDir, "ca.key"), "utf8"));
  const algorithm = { name: "ECDSA", namedCurve: "P-256" };
  const signingKey = await webcrypto.subtle.importKey("pkcs8", keyDer, algorithm, false, ["sign"]);
  const now = Date.now();
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subject,
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 7 * 86_400_000),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    signingKey,
    entries: revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(now - 30_000), reason: x509.X509CrlReason.keyCompromise })),
  });
  // OpenSSL (Mosquitto, Node's tls) reads only the "X509 CRL" PEM label; @peculiar/x509 writes "CRL".
  await writeFile(path.join(certsDir, "crl.pem"), x509.PemConverter.encode(crl.rawData, "X509 CRL") + "\n");
}
