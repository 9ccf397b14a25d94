import { readFile } from "node:fs/promises";
import { writePrivateFile, writePublicFile } from "../ops/file-modes.js";
import { parseArgs } from "node:util";
import { type Certificate, Certificate_Origin, Certificate_State, CertificateSchema, RevocationReason } from "../../gen/tether/v1/certificate_pb.js";
import { CertificateService, ListCertificatesResponseSchema } from "../../gen/tether/v1/certificate_service_pb.js";
import { connectClient } from "./client.js";
import { json, table, time } from "./format.js";

export const CERTS_USAGE = `tether certs <command> [flags]

  issue <device> [--csr FILE] [--days N] [--out PREFIX]
        with --csr: signs the device's CSR (its key never leaves it) and writes PREFIX.crt;
        without:    Tether generates a key pair and returns it once: PREFIX.crt and PREFIX.key (mode 600)
        PREFIX defaults to the device id
  renew <device>/<serial> [--csr FILE] [--days N] [--out PREFIX]   (the old certificate stays valid until it expires)
  revoke <device>/<serial> [--reason key_compromise|superseded|affiliation_changed|cessation_of_operation|privilege_withdrawn|ca_compromise]
  list <device> [--page-size N] [--page-token T]                   (users/admin: the bootstrap admin certificate)
  get <device>/<serial> [--pem]
  crl [--out FILE]                                                  (also served at GET /crl.pem)

Global: --json (protobuf JSON output), --address https://host:port, --certs DIR`;

/** `devices/x/certificates/s`, from `x/s` or the full name. */
const certName = (arg: string | undefined) => {
  if (!arg) throw new Error(`missing <device>/<serial>\n\n${CERTS_USAGE}`);
  if (arg.startsWith("devices/") || arg.startsWith("users/")) return arg;
  const [device, serial] = arg.split("/");
  if (!device || !serial) throw new Error(`expected <device>/<serial>, got ${arg}`);
  return `devices/${device}/certificates/${serial}`;
};

/** `tether certs ...` */
export async function certsCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      json: { type: "boolean" }, address: { type: "string" }, certs: { type: "string" },
      csr: { type: "string" }, days: { type: "string" }, out: { type: "string" }, reason: { type: "string" },
      pem: { type: "boolean" }, "page-size": { type: "string" }, "page-token": { type: "string" },
    },
  });
  const client = connectClient(CertificateService, { address: v.address, certsDir: v.certs });
  const out = (c: Certificate) => console.log(v.json ? json(CertificateSchema, c) : describe(c));
  const validityDays = Number(v.days ?? 0);

  /** Writes what an issue/renew returned; the key, if any, only to a file readable by its owner. */
  async function save(res: { certificate?: Certificate; privateKeyPem: string }, prefix: string) {
    const c = res.certificate!;
    await writePublicFile(`${prefix}.crt`, c.certificatePem);
    const files = [`${prefix}.crt`];
    if (res.privateKeyPem) {
      await writePrivateFile(`${prefix}.key`, res.privateKeyPem);
      files.push(`${prefix}.key (shown this once: Tether does not keep it)`);
    }
    if (v.json) return out(c);
    console.log(`${c.name}\n  expires ${time(c.expireTime)}\n  wrote ${files.join(", ")}`);
  }

  switch (sub) {
    case "issue": {
      const device = p[0];
      if (!device) throw new Error(`tether certs issue: missing device id\n\n${CERTS_USAGE}`);
      const csr = v.csr ? await readFile(v.csr, "utf8") : "";
      const res = await client.createCertificate({ parent: `devices/${device.replace(/^devices\//, "")}`, csr, generateKey: !v.csr, validityDays });
      return save(res, v.out ?? device.replace(/^devices\//, ""));
    }
    case "renew": {
      const name = certName(p[0]);
      const csr = v.csr ? await readFile(v.csr, "utf8") : "";
      const res = await client.renewCertificate({ name, csr, generateKey: !v.csr, validityDays });
      return save(res, v.out ?? name.split("/")[1]!);
    }
    case "revoke": {
      const reason = v.reason ? RevocationReason[v.reason.toUpperCase() as keyof typeof RevocationReason] : RevocationReason.UNSPECIFIED;
      if (reason === undefined) throw new Error(`tether certs revoke: unknown --reason ${v.reason}`);
      return out(await client.revokeCertificate({ name: certName(p[0]), reason }));
    }
    case "list": {
      const device = p[0];
      if (!device) throw new Error(`tether certs list: missing device id\n\n${CERTS_USAGE}`);
      const parent = device.startsWith("users/") ? device : `devices/${device.replace(/^devices\//, "")}`;
      const res = await client.listCertificates({ parent, pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });
      if (v.json) return console.log(json(ListCertificatesResponseSchema, res));
      console.log(table(["SERIAL", "STATE", "ORIGIN", "EXPIRES", "REVOKED", "PREVIOUS"], res.certificates.map((c) => [
        c.serialNumber, stateName(c), Certificate_Origin[c.origin], time(c.expireTime), c.revokeTime ? `${time(c.revokeTime)} ${RevocationReason[c.revocationReason]}` : "-", c.previousCertificate.split("/").at(-1) || "-",
      ])));
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "get": {
      const c = await client.getCertificate({ name: certName(p[0]) });
      return v.pem ? void process.stdout.write(c.certificatePem) : out(c);
    }
    case "crl": {
      const crl = await client.getCertificateRevocationList({});
      if (v.out) {
        await writePublicFile(v.out, crl.crlPem);
        return console.log(`wrote ${v.out} (${crl.revokedCount} revoked)`);
      }
      return void process.stdout.write(crl.crlPem);
    }
    default:
      throw new Error(CERTS_USAGE);
  }
}

const stateName = (c: Certificate) => Certificate_State[c.state];

function describe(c: Certificate): string {
  return table(["FIELD", "VALUE"], [
    ["name", c.name],
    ["subject", c.subject],
    ["state", stateName(c)],
    ["origin", Certificate_Origin[c.origin]],
    ["start_time", time(c.startTime)],
    ["expire_time", time(c.expireTime)],
    ["previous", c.previousCertificate || "-"],
    ["revoke_time", time(c.revokeTime)],
    ["revocation_reason", c.revokeTime ? RevocationReason[c.revocationReason] : "-"],
    ["provisioning_template", c.provisioningTemplate || "-"],
  ]);
}
