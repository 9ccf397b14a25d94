import { parseArgs } from "node:util";
import { type ProvisioningTemplate, ProvisioningTemplateSchema } from "../../gen/tether/v1/provisioning_pb.js";
import { ListProvisioningRecordsResponseSchema, ProvisioningService, ProvisionDeviceResponseSchema } from "../../gen/tether/v1/provisioning_service_pb.js";
import { connectClient } from "./client.js";
import { credentialsPrefix, readInputFile, refuseOverwrite, writeCredential } from "./credential-files.js";
import { parseLabels } from "./device-args.js";
import { json, table, time } from "./format.js";
import { KIND_CHOICES, productOf } from "./kinds.js";

export const PROVISIONING_USAGE = `tether provisioning <command> [flags]

  create <template> --kind ${KIND_CHOICES} --prefix ID_PREFIX [--serial SN]... [--pattern REGEX]
         [--label k=v]... [--days N]          device id = prefix + serial (lowercased)
  list | get <template> | delete <template>   (delete revokes the template's claim certificates)
  allow <template> SN [SN...]                 add serial numbers to the allow-list
  records <template>                          which serials provisioned, as which device
  claim-cert <template> [--days N] [--out PREFIX]
                                              a claim certificate for a batch's factory image: PREFIX.crt/.key
  provision --claim PREFIX --serial SN [--csr FILE] [--out PREFIX]
                                              what a device does on first boot: without --csr it makes a P-256
                                              key and CSR locally (the key never leaves this machine), then
                                              exchanges them with the claim certificate for its own certificate

Global: --json (protobuf JSON output), --address https://host:port, --certs DIR`;

const templateName = (id: string | undefined) => {
  if (!id) throw new Error(`missing template id\n\n${PROVISIONING_USAGE}`);
  return id.startsWith("provisioningTemplates/") ? id : `provisioningTemplates/${id}`;
};

/** `tether provisioning ...` */
export async function provisioningCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      kind: { type: "string" },
      prefix: { type: "string" },
      serial: { type: "string", multiple: true },
      pattern: { type: "string" },
      label: { type: "string", multiple: true },
      days: { type: "string" },
      out: { type: "string" },
      claim: { type: "string" },
      csr: { type: "string" },
      force: { type: "boolean" },
    },
  });
  const client = connectClient(ProvisioningService, { address: v.address, certsDir: v.certs });
  const out = (t: ProvisioningTemplate) => console.log(v.json ? json(ProvisioningTemplateSchema, t) : describe(t));
  // Checked before the call: the key of a claim certificate is returned once.
  const outputs = async (prefix: string, key: boolean) => {
    const files = [{ file: `${prefix}.crt`, what: "certificate" }, ...(key ? [{ file: `${prefix}.key`, what: "private key" }] : [])];
    await refuseOverwrite(files, v.force);
  };

  switch (sub) {
    case "create":
      return out(
        await client.createProvisioningTemplate({
          provisioningTemplateId: templateName(p[0]).split("/")[1]!,
          provisioningTemplate: {
            // The server requires a kind; an unknown one is refused here, an alias becomes its kind name.
            deviceKind: v.kind === undefined ? "" : productOf(v.kind).kindName,
            deviceIdPrefix: v.prefix ?? "",
            allowedSerialNumbers: v.serial ?? [],
            serialNumberPattern: v.pattern ?? "",
            labels: parseLabels(v.label),
            certificateValidityDays: Number(v.days ?? 0),
          },
        }),
      );
    case "list": {
      const res = await client.listProvisioningTemplates({});
      console.log(
        table(
          ["NAME", "KIND", "PREFIX", "ALLOWED", "PATTERN", "PROVISIONED"],
          res.provisioningTemplates.map((t) => [
            t.name,
            t.deviceKind,
            t.deviceIdPrefix,
            String(t.allowedSerialNumbers.length),
            t.serialNumberPattern || "-",
            String(t.provisionedCount),
          ]),
        ),
      );
      return;
    }
    case "get":
      return out(await client.getProvisioningTemplate({ name: templateName(p[0]) }));
    case "allow":
      return out(await client.addAllowedSerialNumbers({ name: templateName(p[0]), serialNumbers: p.slice(1) }));
    case "delete":
      await client.deleteProvisioningTemplate({ name: templateName(p[0]) });
      return console.log(`deleted ${templateName(p[0])}; its claim certificates are revoked`);
    case "records": {
      const res = await client.listProvisioningRecords({ parent: templateName(p[0]) });
      if (v.json) return console.log(json(ListProvisioningRecordsResponseSchema, res));
      console.log(
        table(
          ["SERIAL", "DEVICE", "CERTIFICATE", "TIME"],
          res.provisioningRecords.map((r) => [r.serialNumber, r.device, r.certificate.split("/").at(-1)!, time(r.createTime)]),
        ),
      );
      return;
    }
    case "claim-cert": {
      const name = templateName(p[0]);
      const prefix = await credentialsPrefix(v.out, v.certs, `claim-${name.split("/")[1]}`);
      await outputs(prefix, true);
      const res = await client.createClaimCertificate({ parent: name, validityDays: Number(v.days ?? 0) });
      await writeCredential(`${prefix}.key`, res.privateKeyPem, "private key", v.force);
      await writeCredential(`${prefix}.crt`, res.certificatePem, "certificate", v.force);
      return console.log(`claim certificate ${res.serialNumber} for ${name}\n  wrote ${prefix}.crt, ${prefix}.key (shown this once: Tether does not keep it)`);
    }
    case "provision": {
      if (!v.claim || !v.serial?.[0]) throw new Error(`tether provisioning provision: --claim PREFIX and --serial SN are required\n\n${PROVISIONING_USAGE}`);
      const asClaim = connectClient(ProvisioningService, {
        address: v.address,
        certsDir: v.certs,
        identityFiles: { cert: `${v.claim}.crt`, key: `${v.claim}.key` },
      });
      // Loaded here only: @peculiar/x509 costs every other CLI command's start-up time.
      const local = v.csr
        ? { csrPem: await readInputFile(v.csr, "CSR"), keyPem: undefined }
        : await (await import("../pki/certificate-issuer.js")).createCsr(undefined);
      // The device id is known from the answer only; an explicit --out can be checked before.
      if (v.out) await outputs(v.out, !!local.keyPem);
      const res = await asClaim.provisionDevice({ serialNumber: v.serial[0], csr: local.csrPem });
      const deviceId = res.device!.name.split("/")[1]!;
      const prefix = await credentialsPrefix(v.out, v.certs, deviceId);
      if (local.keyPem) await writeCredential(`${prefix}.key`, local.keyPem, "private key", v.force);
      await writeCredential(`${prefix}.crt`, res.certificate!.certificatePem, "certificate", v.force);
      if (v.json) return console.log(json(ProvisionDeviceResponseSchema, res));
      return console.log(
        `provisioned ${res.device!.name} (certificate ${res.certificate!.serialNumber})\n  wrote ${prefix}.crt${local.keyPem ? `, ${prefix}.key` : ""}`,
      );
    }
    default:
      throw new Error(PROVISIONING_USAGE);
  }
}

function describe(t: ProvisioningTemplate): string {
  return table(
    ["FIELD", "VALUE"],
    [
      ["name", t.name],
      ["device_kind", t.deviceKind],
      ["device_id_prefix", t.deviceIdPrefix],
      [
        "labels",
        Object.entries(t.labels)
          .map(([k, x]) => `${k}=${x}`)
          .join(",") || "-",
      ],
      ["allowed_serial_numbers", t.allowedSerialNumbers.join(",") || "-"],
      ["serial_number_pattern", t.serialNumberPattern || "-"],
      ["certificate_validity_days", t.certificateValidityDays ? String(t.certificateValidityDays) : "default"],
      ["provisioned_count", String(t.provisionedCount)],
      ["create_time", time(t.createTime)],
    ],
  );
}
