import { Code, ConnectError } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { ProvisioningService } from "../../gen/tether/v1/provisioning_service_pb.js";
import { createCsr } from "../../src/pki/certificate-issuer.js";
import { mqttConnect, pem } from "../helpers/certificates.js";
import { freshDatabase } from "../helpers/postgres.js";
import { connectClient, type Pem, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let claim: Pem;
beforeAll(async () => {
  db = await freshDatabase("tether_certs");
  s = await startTestStack({ DATABASE_URL: db.url });
  const p = connectClient(s, ProvisioningService, "grpc");
  await p.createProvisioningTemplate({
    provisioningTemplateId: "pg-batch",
    provisioningTemplate: { deviceKind: "led", deviceIdPrefix: "pg-", serialNumberPattern: "S[0-9]+" },
  });
  const c = await p.createClaimCertificate({ parent: "provisioningTemplates/pg-batch" });
  claim = pem(s, c.certificatePem, c.privateKeyPem);
});
afterAll(async () => {
  await s?.cleanup();
  await db?.drop();
});

describe("certificates on a real PostgreSQL", () => {
  it("provisions a serial once when 20 requests race on a pool of connections", async () => {
    const csrs = await Promise.all(Array.from({ length: 20 }, () => createCsr(undefined)));
    const results = await Promise.allSettled(
      csrs.map((c) => connectClient(s, ProvisioningService, "grpc", claim).provisionDevice({ serialNumber: "S1", csr: c.csrPem })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect((r.reason as ConnectError).code).toBe(Code.AlreadyExists);
    const sql = postgres(db.url, { max: 1 });
    try {
      expect(await sql`SELECT serial_number, device_id FROM provisioning_records`).toEqual([{ serial_number: "S1", device_id: "pg-s1" }]);
      expect((await sql`SELECT count(*)::int AS n FROM certificates WHERE device_id = 'pg-s1'`)[0]!.n).toBe(1);
    } finally {
      await sql.end();
    }
    // Different serials at once all succeed.
    const many = await Promise.all(
      Array.from({ length: 10 }, async (_, i) =>
        connectClient(s, ProvisioningService, "grpc", claim).provisionDevice({ serialNumber: `S${100 + i}`, csr: (await createCsr(undefined)).csrPem }),
      ),
    );
    expect(new Set(many.map((r) => r.device!.name)).size).toBe(10);
  });

  it("never stores a private key, and keeps revocations across a restart", async () => {
    await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "pg-key", device: { kind: { case: "led", value: {} } } });
    const res = await connectClient(s, CertificateService, "grpc").createCertificate({ parent: "devices/pg-key", generateKey: true });
    const keyBody = res.privateKeyPem.split("\n").slice(1, -2).join("");
    expect(keyBody.length).toBeGreaterThan(40);
    const sql = postgres(db.url, { max: 1 });
    try {
      const tables = await sql<{ t: string }[]>`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'`;
      for (const { t } of tables) {
        const rows = await sql.unsafe(`SELECT x::text AS row FROM ${t} x`);
        for (const r of rows) {
          expect(String(r.row)).not.toMatch(/PRIVATE KEY/);
          expect(String(r.row).replace(/\\n|\s/g, "")).not.toContain(keyBody.slice(0, 40));
        }
      }
    } finally {
      await sql.end();
    }
    await connectClient(s, CertificateService, "grpc").revokeCertificate({ name: res.certificate!.name });
    await s.app.stop();
    await s.restart();
    const again = await mqttConnect(s, "pg-key", res.certificate!.certificatePem, res.privateKeyPem);
    expect(again.error).toMatch(/Not authorized/);
  });

  it("revokes a device's certificates in DeleteDevice's transaction, even ones issued while it races", async () => {
    const devices = connectClient(s, DeviceService, "grpc");
    const certs = connectClient(s, CertificateService, "grpc");
    const before = await devices.createDevice({ deviceId: "pg-race", device: { kind: { case: "led", value: {} } } });
    await certs.createCertificate({ parent: "devices/pg-race", generateKey: true });
    // Issues race the deletion on a pool of connections: whatever was stored must end up revoked.
    const csrs = await Promise.all(Array.from({ length: 8 }, () => createCsr("pg-race")));
    const issuing = csrs.map((c) => certs.createCertificate({ parent: "devices/pg-race", csr: c.csrPem }).catch((e: unknown) => e));
    const deleting = devices.deleteDevice({ name: "devices/pg-race" });
    const outcomes = await Promise.all(issuing);
    await deleting;
    for (const o of outcomes) if (o instanceof ConnectError) expect(o.code).toBe(Code.NotFound);
    const sql = postgres(db.url, { max: 1 });
    try {
      const rows = await sql<{ revoked: boolean; reason: number | null; uid: string | null }[]>`
        SELECT revoke_time IS NOT NULL AS revoked, revocation_reason AS reason, device_uid::text AS uid FROM certificates WHERE device_id = 'pg-race'`;
      expect(rows.length).toBeGreaterThanOrEqual(1);
      for (const r of rows) expect(r).toEqual({ revoked: true, reason: 5, uid: before.uid });
      expect(await sql`SELECT device_id, device_uid::text AS uid FROM device_deletions WHERE device_id = 'pg-race'`).toEqual([
        { device_id: "pg-race", uid: before.uid },
      ]);
    } finally {
      await sql.end();
    }
    // The re-created id starts with no certificate of its own.
    const after = await devices.createDevice({ deviceId: "pg-race", device: { kind: { case: "led", value: {} } } });
    expect(after.uid).not.toBe(before.uid);
    expect((await certs.listCertificates({ parent: "devices/pg-race" })).certificates).toEqual([]);
  });
});
