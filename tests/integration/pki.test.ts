import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCertificateAuthority, loadCertificateAuthority, type CertificateAuthority } from "../../src/pki/certificate-authority.js";
import { DEV_CA_COMMON_NAME, ensureDevPki, issueDeviceCertificate, issueServiceCertificate } from "../../src/pki/dev-pki.js";

const DAY_MS = 24 * 60 * 60 * 1000;
let dir: string;
let ca: CertificateAuthority;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tether-pki-"));
  ca = await createCertificateAuthority("Test CA");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `openssl verify` and returns its exit status and output. */
async function opensslVerify(caPem: string, certPem: string, purpose: "sslserver" | "sslclient") {
  const sub = await mkdtemp(join(dir, "verify-"));
  await writeFile(join(sub, "ca.pem"), caPem);
  await writeFile(join(sub, "cert.pem"), certPem);
  try {
    const out = execFileSync("openssl", ["verify", "-CAfile", join(sub, "ca.pem"), "-purpose", purpose, join(sub, "cert.pem")], {
      stdio: "pipe",
    });
    return { ok: true, out: out.toString() };
  } catch (err) {
    return { ok: false, out: String((err as { stdout?: Buffer }).stdout ?? err) };
  }
}

function opensslText(certPem: string): string {
  return execFileSync("openssl", ["x509", "-noout", "-text"], { input: certPem }).toString();
}

describe("certificate authority", () => {
  it("creates a self-signed CA with the CA extensions", () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe("CN=Test CA");
    expect(cert.checkIssued(cert)).toBe(true);
    expect(Date.parse(cert.validTo) - Date.now()).toBeGreaterThan(3640 * DAY_MS);
    const text = opensslText(ca.certPem);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toContain("Subject Key Identifier");
    expect(text).toContain("ASN1 OID: prime256v1");
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it("issues a server certificate that OpenSSL accepts for TLS servers only", async () => {
    const issued = await ca.issue({ commonName: "localhost", usage: "server", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"] });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subject).toBe("CN=localhost");
    expect(cert.ca).toBe(false);
    expect(cert.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    expect(cert.serialNumber.toLowerCase()).toBe(issued.serialNumber);
    expect(issued.serialNumber).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(issued.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const days = (Date.parse(cert.validTo) - Date.now()) / DAY_MS;
    expect(days).toBeGreaterThan(824);
    expect(days).toBeLessThan(826);

    const text = opensslText(issued.certPem);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/Extended Key Usage:\s*\n\s+TLS Web Server Authentication\n/);
    const caKeyId = /Subject Key Identifier:\s*\n\s+(\S+)/.exec(opensslText(ca.certPem))![1];
    expect(text).toMatch(new RegExp(`Authority Key Identifier:\\s*\\n\\s+(keyid:)?${caKeyId}`));

    expect(await opensslVerify(ca.certPem, issued.certPem, "sslserver")).toMatchObject({ ok: true });
    expect((await opensslVerify(ca.certPem, issued.certPem, "sslclient")).ok).toBe(false);
  });

  it("issues a client certificate with OU and a one-year default validity", async () => {
    const issued = await ca.issue({ commonName: "alice", usage: "client", organizationalUnit: "users" });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subject.split("\n").sort()).toEqual(["CN=alice", "OU=users"]);
    expect(cert.subjectAltName).toBeUndefined();
    expect(Math.round((Date.parse(cert.validTo) - Date.now()) / DAY_MS)).toBe(365);
    expect(await opensslVerify(ca.certPem, issued.certPem, "sslclient")).toMatchObject({ ok: true });
    expect((await opensslVerify(ca.certPem, issued.certPem, "sslserver")).ok).toBe(false);
    const other = await createCertificateAuthority("Other CA");
    expect((await opensslVerify(other.certPem, issued.certPem, "sslclient")).ok).toBe(false);
  });

  it("gives every certificate a distinct serial number", async () => {
    const serials = await Promise.all([1, 2, 3].map(() => ca.issue({ commonName: "x", usage: "client" }).then((c) => c.serialNumber)));
    expect(new Set(serials).size).toBe(3);
  });

  it("rejects invalid IP addresses", async () => {
    await expect(ca.issue({ commonName: "x", usage: "server", ipAddresses: ["localhost"] })).rejects.toThrow(/IP/);
  });

  it("loads a CA from PEM and keeps issuing under it", async () => {
    const loaded = await loadCertificateAuthority(ca.certPem, ca.keyPem);
    expect(loaded.certPem).toBe(ca.certPem);
    const issued = await loaded.issue({ commonName: "dev", usage: "client" });
    expect(await opensslVerify(ca.certPem, issued.certPem, "sslclient")).toMatchObject({ ok: true });
  });

  it("refuses a key that does not belong to the certificate, and a non-CA certificate", async () => {
    const other = await createCertificateAuthority("Other CA");
    await expect(loadCertificateAuthority(ca.certPem, other.keyPem)).rejects.toThrow(/does not match/);
    const leaf = await ca.issue({ commonName: "leaf", usage: "client" });
    await expect(loadCertificateAuthority(leaf.certPem, leaf.keyPem)).rejects.toThrow(/not a CA/);
  });

  it.each([
    ["EC P-256 (SEC1 key)", ["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out"]],
    ["RSA 2048", ["genrsa", "-out"]],
  ])("loads an OpenSSL-made CA: %s", async (_name, keyArgs) => {
    const sub = await mkdtemp(join(dir, "openssl-ca-"));
    const keyPath = join(sub, "ca.key");
    const certPath = join(sub, "ca.crt");
    execFileSync("openssl", [...keyArgs, keyPath, ...(keyArgs[0] === "genrsa" ? ["2048"] : [])], { stdio: "pipe" });
    execFileSync("openssl", ["req", "-x509", "-new", "-key", keyPath, "-subj", "/CN=External CA", "-days", "30", "-out", certPath], { stdio: "pipe" });
    const external = await loadCertificateAuthority(await readFile(certPath, "utf8"), await readFile(keyPath, "utf8"));
    const issued = await external.issue({ commonName: "localhost", usage: "server", dnsNames: ["localhost"] });
    expect(await opensslVerify(external.certPem, issued.certPem, "sslserver")).toMatchObject({ ok: true });
  });
});

describe("TLS with issued certificates", () => {
  async function handshake(caPem: string, server: { certPem: string; keyPem: string }, client: { certPem: string; keyPem: string }, clientCaPem = caPem) {
    const serverSide: { authorized?: boolean; cn?: string } = {};
    const srv = tls.createServer({ key: server.keyPem, cert: server.certPem, ca: caPem, requestCert: true, rejectUnauthorized: true }, (socket) => {
      serverSide.authorized = socket.authorized;
      serverSide.cn = socket.getPeerCertificate().subject?.CN as string | undefined;
      socket.end("hello");
    });
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    const port = (srv.address() as AddressInfo).port;
    try {
      const socket = tls.connect({ host: "127.0.0.1", port, ca: clientCaPem, cert: client.certPem, key: client.keyPem });
      const result = await new Promise<{ authorized: boolean; data: string; error?: string }>((resolve) => {
        let data = "";
        let error: string | undefined;
        socket.on("data", (d: Buffer) => (data += d.toString()));
        socket.on("error", (err) => (error = err.message));
        socket.on("close", () => resolve({ authorized: socket.authorized, data, error }));
      });
      return { client: result, server: serverSide };
    } finally {
      srv.close();
    }
  }

  it("completes a mutual TLS handshake: both sides authorized", async () => {
    const server = await ca.issue({ commonName: "localhost", usage: "server", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"] });
    const client = await ca.issue({ commonName: "device-1", usage: "client", organizationalUnit: "devices" });
    const { client: c, server: s } = await handshake(ca.certPem, server, client);
    expect(c).toMatchObject({ authorized: true, data: "hello" });
    expect(s).toEqual({ authorized: true, cn: "device-1" });
  });

  it("rejects a client certificate from a different CA", async () => {
    const server = await ca.issue({ commonName: "localhost", usage: "server", ipAddresses: ["127.0.0.1"] });
    const other = await createCertificateAuthority("Other CA");
    const client = await other.issue({ commonName: "intruder", usage: "client" });
    const { client: c, server: s } = await handshake(ca.certPem, server, client);
    expect(c.data).toBe("");
    expect(c.authorized).toBe(true); // the client trusts the server; the server refuses the client
    expect(s.authorized).toBeUndefined(); // the connection handler never ran
  });
});

describe("development PKI", () => {
  it("creates CA, server and admin certificates with private keys readable only by the owner", async () => {
    const pkiDir = join(dir, "nested", "certs");
    const pki = await ensureDevPki(pkiDir);
    expect(pki.dir).toBe(pkiDir);
    expect(pki.paths).toEqual({
      ca: join(pkiDir, "ca.crt"),
      server: { cert: join(pkiDir, "server.crt"), key: join(pkiDir, "server.key") },
      admin: { cert: join(pkiDir, "admin.crt"), key: join(pkiDir, "admin.key") },
    });
    for (const name of ["ca.key", "server.key", "admin.key"]) {
      expect((await stat(join(pkiDir, name))).mode & 0o777).toBe(0o600);
    }
    expect(await readFile(pki.paths.ca, "utf8")).toBe(pki.caPem);
    expect(new X509Certificate(pki.caPem).subject).toBe(`CN=${DEV_CA_COMMON_NAME}`);

    const server = new X509Certificate(pki.server.certPem);
    expect(server.subject).toBe("CN=localhost");
    expect(server.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    expect(await opensslVerify(pki.caPem, pki.server.certPem, "sslserver")).toMatchObject({ ok: true });

    const admin = new X509Certificate(pki.admin.certPem);
    expect(admin.subject.split("\n").sort()).toEqual(["CN=admin", "OU=users"]);
    expect(await opensslVerify(pki.caPem, pki.admin.certPem, "sslclient")).toMatchObject({ ok: true });

    const { client, server: s } = await (async () => {
      const srv = tls.createServer({ key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: true }, (socket) =>
        socket.end(),
      );
      srv.listen(0, "127.0.0.1");
      await once(srv, "listening");
      const secure = once(srv, "secureConnection") as Promise<[tls.TLSSocket]>;
      const socket = tls.connect({
        host: "localhost",
        port: (srv.address() as AddressInfo).port,
        ca: pki.caPem,
        cert: pki.admin.certPem,
        key: pki.admin.keyPem,
      });
      await once(socket, "secureConnect");
      const [serverSocket] = await secure;
      socket.destroy();
      srv.close();
      return { client: socket.authorized, server: serverSocket.authorized };
    })();
    expect(client).toBe(true);
    expect(s).toBe(true);
  });

  it("reuses existing files and reissues only what is missing", async () => {
    const pkiDir = join(dir, "reuse");
    const first = await ensureDevPki(pkiDir);
    const second = await ensureDevPki(pkiDir);
    expect(new X509Certificate(second.caPem).fingerprint256).toBe(new X509Certificate(first.caPem).fingerprint256);
    expect(second.server).toEqual(first.server);
    expect(second.admin).toEqual(first.admin);

    await unlink(first.paths.server.key);
    const third = await ensureDevPki(pkiDir);
    expect(third.caPem).toBe(first.caPem);
    expect(third.server.certPem).not.toBe(first.server.certPem);
    expect(third.admin).toEqual(first.admin);
    expect(await opensslVerify(first.caPem, third.server.certPem, "sslserver")).toMatchObject({ ok: true });
  });

  it("reissues leaf certificates when the CA was replaced, and refuses half a CA", async () => {
    const pkiDir = join(dir, "replaced");
    const first = await ensureDevPki(pkiDir);
    await unlink(join(pkiDir, "ca.crt"));
    await expect(ensureDevPki(pkiDir)).rejects.toThrow(/incomplete CA/);
    await unlink(join(pkiDir, "ca.key"));
    const warnings: unknown[] = [];
    const log = { info: () => {}, warn: (obj: unknown) => warnings.push(obj) } as unknown as Parameters<typeof ensureDevPki>[1];
    const second = await ensureDevPki(pkiDir, log);
    expect(second.caPem).not.toBe(first.caPem);
    expect(warnings).toHaveLength(2);
    expect(await opensslVerify(second.caPem, second.server.certPem, "sslserver")).toMatchObject({ ok: true });
    expect(await opensslVerify(second.caPem, second.admin.certPem, "sslclient")).toMatchObject({ ok: true });
  });

  it("issues device certificates with CN = device id and OU devices", async () => {
    const issued = await issueDeviceCertificate(ca, "kitchen-led-1");
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subject.split("\n").sort()).toEqual(["CN=kitchen-led-1", "OU=devices"]);
    expect(await opensslVerify(ca.certPem, issued.certPem, "sslclient")).toMatchObject({ ok: true });
    await expect(issueDeviceCertificate(ca, "Bad/Id")).rejects.toThrow(/invalid device id/);
  });

  it("issues service certificates with OU services", async () => {
    const issued = await issueServiceCertificate(ca);
    expect(new X509Certificate(issued.certPem).subject.split("\n").sort()).toEqual(["CN=tether", "OU=services"]);
    expect(await opensslVerify(ca.certPem, issued.certPem, "sslclient")).toMatchObject({ ok: true });
  });
});
