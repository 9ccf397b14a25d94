import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizeSerial } from "../../src/core/certificates/certificate-name.js";
import { checkCsr, keyProblem } from "../../src/core/certificates/csr-policy.js";
import { type CertificateAuthority, createCertificateAuthority } from "../../src/pki/certificate-authority.js";
import { createCertificateIssuer, createCsr, inspectCsr } from "../../src/pki/certificate-issuer.js";

let dir: string;
let ca: CertificateAuthority;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tether-csr-"));
  ca = await createCertificateAuthority("Test CA");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A CSR made by OpenSSL, as firmware toolchains usually make them. */
function opensslCsr(keyArgs: string[], subject: string): string {
  const key = join(dir, `k-${Math.random().toString(36).slice(2)}.pem`);
  execFileSync("openssl", ["genpkey", ...keyArgs, "-out", key], { stdio: "pipe" });
  return execFileSync("openssl", ["req", "-new", "-key", key, "-subj", subject], { stdio: "pipe" }).toString();
}

describe("CSR inspection and policy", () => {
  it("reads an OpenSSL P-256 CSR and signs a certificate OpenSSL verifies as a TLS client", async () => {
    const csr = opensslCsr(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "/CN=dev-1");
    expect(await inspectCsr(csr)).toEqual({
      commonName: "dev-1",
      organizationalUnits: [],
      signatureValid: true,
      key: { type: "ec", curve: "P-256", bits: undefined },
    });
    const issuer = createCertificateIssuer(ca);
    await checkCsr(issuer, csr, ["dev-1"]);
    const { certificate, privateKeyPem } = await issuer.issue({ csrPem: csr, commonName: "dev-1", organizationalUnit: "devices", validityDays: 10 });
    expect(privateKeyPem).toBeUndefined();
    await writeFile(join(dir, "ca.pem"), ca.certPem);
    await writeFile(join(dir, "dev.pem"), certificate.certificatePem);
    const out = execFileSync("openssl", ["verify", "-CAfile", join(dir, "ca.pem"), "-purpose", "sslclient", join(dir, "dev.pem")]).toString();
    expect(out).toMatch(/OK/);
    expect(certificate.subject).toBe("CN=dev-1, OU=devices");
  });

  it.each([
    ["Ed25519", ["-algorithm", "ED25519"], /key type ed25519 is not accepted/],
    ["P-192", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime192v1"], /curve .* is not accepted/],
    ["RSA-1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], /1024 bits is too weak/],
  ])("refuses a %s key", async (_name, args, reason) => {
    let csr: string;
    try {
      csr = opensslCsr(args, "/CN=dev-1");
    } catch {
      return; // this OpenSSL build cannot make such a key; nothing to refuse
    }
    const summary = await inspectCsr(csr);
    expect(keyProblem(summary!.key)).toMatch(reason);
    await expect(checkCsr(createCertificateIssuer(ca), csr, ["dev-1"])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("refuses a CSR for another identity with PERMISSION_DENIED and garbage with INVALID_ARGUMENT", async () => {
    const issuer = createCertificateIssuer(ca);
    await expect(checkCsr(issuer, (await createCsr("dev-2")).csrPem, ["dev-1"])).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    await expect(checkCsr(issuer, "hello", ["dev-1"])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(checkCsr(issuer, "x".repeat(20_000), ["dev-1"])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("normalizes serial numbers as OpenSSL prints them", () => {
    expect(normalizeSerial("00AB01")).toBe("ab01");
    expect(normalizeSerial("7F00")).toBe("7f00");
    expect(normalizeSerial("00")).toBe("00");
  });
});

describe("CRL", () => {
  it("is signed by the CA and makes OpenSSL refuse the revoked certificate only", async () => {
    const revoked = await ca.issue({ commonName: "dev-r", usage: "client", organizationalUnit: "devices" });
    const fine = await ca.issue({ commonName: "dev-f", usage: "client", organizationalUnit: "devices" });
    const crl = await ca.createCrl([{ serialNumber: revoked.serialNumber, revocationDate: new Date(), reason: 1 }], new Date(Date.now() + 86_400_000));
    const files = { ca: join(dir, "crl-ca.pem"), crl: join(dir, "crl.pem"), r: join(dir, "r.pem"), f: join(dir, "f.pem") };
    await writeFile(files.ca, ca.certPem);
    await writeFile(files.crl, crl);
    await writeFile(files.r, revoked.certPem);
    await writeFile(files.f, fine.certPem);
    const text = execFileSync("openssl", ["crl", "-in", files.crl, "-CAfile", files.ca, "-noout", "-text"], { stdio: "pipe" }).toString();
    expect(text.toLowerCase().replace(/:/g, "")).toContain(revoked.serialNumber);
    expect(text).toMatch(/Key Compromise/);
    const verify = (cert: string) => {
      try {
        return execFileSync("openssl", ["verify", "-crl_check", "-CAfile", files.ca, "-CRLfile", files.crl, cert], { stdio: "pipe" }).toString();
      } catch (err) {
        const e = err as { stdout?: Buffer; stderr?: Buffer };
        return `${e.stdout ?? ""}${e.stderr ?? ""}`;
      }
    };
    expect(verify(files.f)).toMatch(/OK/);
    expect(verify(files.r)).toMatch(/certificate revoked/);
  });
});
