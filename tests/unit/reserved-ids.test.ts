import { describe, expect, it } from "vitest";
import { isReservedId, reservedIdProblem } from "../../src/core/reserved-ids.js";
import { createCertificateAuthority } from "../../src/pki/certificate-authority.js";
import { issueDeviceCertificate } from "../../src/pki/dev-pki.js";

describe("reserved identities", () => {
  it.each([
    "tether",
    "admin",
    "guest",
    "mosquitto",
    "rabbitmq",
    "anonymous",
    "tether-myhost-1234",
    "tether-provisioning-x",
    "rabbitmq-node-1",
    "$SYS",
    "Admin",
  ])("reserves %s", (id) => {
    expect(isReservedId(id)).toBe(true);
    expect(reservedIdProblem(id)).toMatch(/reserved/);
  });

  it.each(["kitchen-led", "admiral-led", "tetherball", "guest-room-led", "led-sn-0001"])("leaves %s to devices", (id) => {
    expect(reservedIdProblem(id)).toBeUndefined();
  });

  it("is enforced by the dev PKI's offline device certificates (CLI simulate, tests)", async () => {
    const ca = await createCertificateAuthority("test CA");
    await expect(issueDeviceCertificate(ca, "tether")).rejects.toThrow(/reserved/);
    await expect(issueDeviceCertificate(ca, "tether-host-1")).rejects.toThrow(/reserved/);
    expect((await issueDeviceCertificate(ca, "porch-led")).serialNumber).toMatch(/^[0-9a-f]+$/i);
  });
});
