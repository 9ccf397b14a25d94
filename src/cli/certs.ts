import { writePublicFile } from "../ops/file-modes.js";
import { parseArgs } from "node:util";
import { type Certificate, Certificate_Origin, Certificate_State, CertificateSchema, RevocationReason } from "../../gen/tether/v1/certificate_pb.js";
import { CertificateService, ListCertificatesResponseSchema } from "../../gen/tether/v1/certificate_service_pb.js";
import { FileError } from "./cli-error.js";
import { connectClient } from "./client.js";
import { credentialsPrefix, readInputFile, refuseOverwrite, writeCredential } from "./credential-files.js";
import { json, table, time } from "./format.js";

export const CERTS_USAGE = `tether certs <command> [flags]

  issue <device> [--csr FILE] [--days N] [--out PREFIX] [--force]
        with --csr: signs the device's CSR (its key never leaves it) and writes PREFIX.crt;
        without:    Tether generates a key pair and returns it once: PREFIX.crt and PREFIX.key (mode 600)
        PREFIX defaults to certs/devices/<device> (the folder is made mode 700); existing files are
        never replaced without --force
  renew <device>/<serial> [--csr FILE] [--days N] [--out PREFIX] [--force]
        the same files; the old certificate stays valid until it expires
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
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      csr: { type: "string" },
      days: { type: "string" },
      out: { type: "string" },
      reason: { type: "string" },
      force: { type: "boolean" },
      pem: { type: "boolean" },
      "page-size": { type: "string" },
      "page-token": { type: "string" },
    },
  });
  const client = connectClient(CertificateService, { address: v.address, certsDir: v.certs });
  const out = (c: Certificate) => console.log(v.json ? json(CertificateSchema, c) : describe(c));
  const validityDays = Number(v.days ?? 0);

  /** The output files, checked before the call: a generated key is returned once and must not be lost. */
  async function outputFiles(device: string) {
    const prefix = await credentialsPrefix(v.out, v.certs, device);
    const files = { crt: `${prefix}.crt`, key: v.csr ? undefined : `${prefix}.key` };
    await refuseOverwrite([{ file: files.crt, what: "certificate" }, ...(files.key ? [{ file: files.key, what: "private key" }] : [])], v.force);
    return files;
  }

  /** Writes what an issue/renew returned; the key, if any, only to a file readable by its owner. */
  async function save(res: { certificate?: Certificate; privateKeyPem: string }, files: { crt: string; key?: string }) {
    const c = res.certificate!;
    const wrote = [files.crt];
    // The key first: if the certificate cannot be written, it can be fetched again (certs get --pem); the key cannot.
    if (res.privateKeyPem && files.key) {
      await writeCredential(files.key, res.privateKeyPem, "private key", v.force);
      wrote.push(`${files.key} (shown this once: Tether does not keep it)`);
    }
    await writeCredential(files.crt, c.certificatePem, "certificate", v.force);
    if (v.json) return out(c);
    console.log(`${c.name}\n  expires ${time(c.expireTime)}\n  wrote ${wrote.join(", ")}`);
  }

  switch (sub) {
    case "issue": {
      const device = p[0];
      if (!device) throw new Error(`tether certs issue: missing device id\n\n${CERTS_USAGE}`);
      const id = device.replace(/^devices\//, "");
      const csr = v.csr ? await readInputFile(v.csr, "CSR") : "";
      const files = await outputFiles(id);
      const res = await client.createCertificate({ parent: `devices/${id}`, csr, generateKey: !v.csr, validityDays });
      return save(res, files);
    }
    case "renew": {
      const name = certName(p[0]);
      const csr = v.csr ? await readInputFile(v.csr, "CSR") : "";
      const files = await outputFiles(name.split("/")[1]!);
      const res = await client.renewCertificate({ name, csr, generateKey: !v.csr, validityDays });
      return save(res, files);
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
      console.log(
        table(
          ["SERIAL", "STATE", "ORIGIN", "EXPIRES", "REVOKED", "PREVIOUS"],
          res.certificates.map((c) => [
            c.serialNumber,
            stateName(c),
            Certificate_Origin[c.origin],
            time(c.expireTime),
            c.revokeTime ? `${time(c.revokeTime)} ${RevocationReason[c.revocationReason]}` : "-",
            c.previousCertificate.split("/").at(-1) || "-",
          ]),
        ),
      );
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
        await writePublicFile(v.out, crl.crlPem).catch((err: unknown) => {
          throw new FileError("cannot write the CRL", v.out!, err);
        });
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
  return table(
    ["FIELD", "VALUE"],
    [
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
    ],
  );
}
