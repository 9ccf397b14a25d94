import { createReadStream } from "node:fs";
import { open, readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { type Firmware, Firmware_State, FirmwareSchema } from "../../gen/tether/v1/firmware_pb.js";
import { FirmwareService, FirmwareSigningKeysSchema, ListFirmwaresResponseSchema } from "../../gen/tether/v1/firmware_service_pb.js";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { digestStream, loadEd25519PublicKey, verifyFirmware } from "../firmware/verify.js";
import { CliError, FileError, usageError } from "./cli-error.js";
import { connectClient } from "./client.js";
import { json, table, time } from "./format.js";
import { productOf } from "./kinds.js";

export const FIRMWARE_USAGE = `tether firmware <command> [flags]

  upload <file> --kind KIND --version X.Y.Z [--notes TEXT] [--hardware LABEL]... [--id ID]
                               (admins; sent in 1 MiB chunks, SHA-256 checked on commit)
  list [--kind KIND] [--page-size N] [--page-token T]
  get <id> [--manifest-out FILE]   (FILE: the signed manifest, for verify)
  delete <id> [--etag E]           (admins; refused while a device reports the version)
  keys [--out FILE]                the manifest signing public keys (FILE: all of them as PEM)
  rotate-key                       (admins) a new signing key for new manifests
  verify <file> --manifest FILE [--key PEM_FILE]
                               offline, no server: the file's SHA-256 and size against the
                               manifest, and the manifest's Ed25519 signature against the
                               key(s) in PEM_FILE (default firmware-keys.pem, from \`keys --out\`)

Global: --json (protobuf JSON output), --address https://host:port, --certs DIR`;

const WHERE = "tether firmware";
const CHUNK = 1024 * 1024;
const firmwareName = (id: string) => (id.startsWith("firmwares/") ? id : `firmwares/${id}`);
const KIND_OF = (k: ProductKind) => ProductKind[k]?.toLowerCase() ?? String(k);

/** The signed manifest as `get --manifest-out` writes it and `verify --manifest` reads it. */
interface ManifestFile {
  firmware: string;
  signingKeyId: string;
  /** Base64 of the manifest bytes (tether.v1.FirmwareManifest, binary) and of the Ed25519 signature. */
  manifest: string;
  signature: string;
}

/** `tether firmware ...` */
export async function firmwareCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      kind: { type: "string" },
      version: { type: "string" },
      notes: { type: "string" },
      hardware: { type: "string", multiple: true },
      id: { type: "string" },
      manifest: { type: "string" },
      "manifest-out": { type: "string" },
      key: { type: "string" },
      out: { type: "string" },
      etag: { type: "string" },
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      "page-size": { type: "string" },
      "page-token": { type: "string" },
    },
  });
  const arg = (what: string) => {
    if (!p[0]) throw usageError(`missing ${what} for "tether firmware ${sub}"`, WHERE);
    return p[0];
  };
  const kindFlag = () => {
    if (v.kind === undefined) return undefined;
    try {
      return productOf(v.kind).productKind;
    } catch (err) {
      throw usageError((err as Error).message, WHERE);
    }
  };
  // Offline: no client, no certificates, no server.
  if (sub === "verify") return verify(arg("file"), v.manifest, v.key ?? "firmware-keys.pem");

  const client = () => connectClient(FirmwareService, { address: v.address, certsDir: v.certs });
  const out = (f: Firmware) => console.log(v.json ? json(FirmwareSchema, f) : describe(f));
  switch (sub) {
    case "upload": {
      const file = arg("file");
      const kind = kindFlag();
      if (kind === undefined) throw usageError("tether firmware upload needs --kind", WHERE);
      if (!v.version) throw usageError("tether firmware upload needs --version (a semantic version, e.g. 1.2.0)", WHERE);
      const fh = await open(file, "r").catch((err: unknown) => {
        throw new FileError("cannot read the image", file, err);
      });
      try {
        const c = client();
        const begun = await c.beginFirmwareUpload({
          firmwareId: v.id ?? "",
          firmware: { kind, version: v.version, releaseNotes: v.notes ?? "", hardwareLabels: v.hardware ?? [] },
        });
        const hash = createHash("sha256");
        const buf = Buffer.alloc(CHUNK);
        let offset = 0;
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, CHUNK, offset);
          if (bytesRead === 0) break;
          const data = buf.subarray(0, bytesRead);
          hash.update(data);
          await c.uploadFirmwareChunk({ name: begun.name, offset: BigInt(offset), data });
          offset += bytesRead;
        }
        return out(await c.commitFirmwareUpload({ name: begun.name, sha256: hash.digest("hex") }));
      } finally {
        await fh.close();
      }
    }
    case "list": {
      const res = await client().listFirmwares({ kind: kindFlag(), pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });
      if (v.json) return console.log(json(ListFirmwaresResponseSchema, res));
      console.log(
        table(
          ["FIRMWARE", "KIND", "VERSION", "STATE", "SIZE", "SHA-256", "PUBLISHED"],
          res.firmwares.map((f) => [
            f.name.slice(10),
            KIND_OF(f.kind),
            f.version,
            Firmware_State[f.state] ?? "-",
            String(f.sizeBytes),
            f.sha256 ? `${f.sha256.slice(0, 12)}…` : "-",
            time(f.publishTime),
          ]),
        ),
      );
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "get": {
      const f = await client().getFirmware({ name: firmwareName(arg("firmware id")) });
      if (v["manifest-out"]) {
        if (f.state !== Firmware_State.PUBLISHED) throw new CliError(`error: ${f.name} is not published yet: it has no manifest`);
        const m: ManifestFile = {
          firmware: f.name,
          signingKeyId: f.signingKeyId,
          manifest: Buffer.from(f.manifest).toString("base64"),
          signature: Buffer.from(f.manifestSignature).toString("base64"),
        };
        await writeFile(v["manifest-out"], `${JSON.stringify(m, null, 2)}\n`).catch((err: unknown) => {
          throw new FileError("cannot write the manifest", v["manifest-out"]!, err);
        });
      }
      return out(f);
    }
    case "delete": {
      const name = firmwareName(arg("firmware id"));
      await client().deleteFirmware({ name, etag: v.etag ?? "" });
      console.log(`deleted ${name}`);
      return;
    }
    case "keys": {
      const res = await client().getFirmwareSigningKeys({});
      if (v.out) {
        await writeFile(v.out, res.keys.map((k) => k.publicKeyPem).join("")).catch((err: unknown) => {
          throw new FileError("cannot write the keys", v.out!, err);
        });
      }
      if (v.json) return console.log(json(FirmwareSigningKeysSchema, res));
      console.log(
        table(
          ["KEY", "PRIMARY", "CREATED"],
          res.keys.map((k) => [k.keyId, k.primary ? "yes" : "", time(k.createTime)]),
        ),
      );
      if (v.out) console.log(`\nwrote ${res.keys.length} public key(s) to ${v.out}`);
      return;
    }
    case "rotate-key": {
      const k = await client().rotateFirmwareSigningKey({});
      console.log(`${k.keyId}: the primary firmware signing key from now on (older keys stay listed for verification)`);
      return;
    }
    default:
      throw usageError(`unknown command "${sub ?? ""}" for "tether firmware"`, WHERE);
  }
}

/** `verify`: everything from files, nothing from a server. Exit 1 with the reason on a mismatch. */
async function verify(file: string, manifestFile: string | undefined, keyFile: string): Promise<void> {
  if (!manifestFile) throw usageError("tether firmware verify needs --manifest FILE (written by `tether firmware get <id> --manifest-out FILE`)", WHERE);
  const m = await readFile(manifestFile, "utf8").catch((err: unknown) => {
    throw new FileError("cannot read the manifest", manifestFile, err);
  });
  let parsed: ManifestFile;
  try {
    parsed = JSON.parse(m) as ManifestFile;
    if (typeof parsed.manifest !== "string" || typeof parsed.signature !== "string") throw new Error("fields");
  } catch {
    throw new CliError(`error: ${manifestFile} is not a manifest file written by \`tether firmware get --manifest-out\``);
  }
  const pems = await readFile(keyFile, "utf8").catch((err: unknown) => {
    throw new FileError("cannot read the public key(s)", keyFile, err, " (write them with `tether firmware keys --out firmware-keys.pem`)");
  });
  const blocks = pems.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new CliError(`error: ${keyFile} holds no PEM public key`);
  const keys = blocks.map((b) => loadEd25519PublicKey(b));
  const image = await digestStream(createReadStream(file).on("error", () => {}) as AsyncIterable<Uint8Array>).catch((err: unknown) => {
    throw new FileError("cannot read the image", file, err);
  });
  const r = verifyFirmware(image, Buffer.from(parsed.manifest, "base64"), Buffer.from(parsed.signature, "base64"), keys);
  if (!r.ok) throw new CliError(`error: ${file} does NOT verify: ${r.reason}`);
  const kind = KIND_OF(r.manifest.kind);
  console.log(
    `${file}: OK — ${r.manifest.firmware} (${kind} ${r.manifest.version}, ${r.manifest.sizeBytes} bytes), SHA-256 ${Buffer.from(r.manifest.sha256).toString("hex")}, signed by ${r.manifest.signingKeyId}`,
  );
}

function describe(f: Firmware): string {
  const lines = [
    f.name,
    `  kind          ${KIND_OF(f.kind)}`,
    `  version       ${f.version}`,
    `  state         ${Firmware_State[f.state] ?? "-"}`,
    `  size          ${f.sizeBytes} bytes`,
    `  sha256        ${f.sha256 || "-"}`,
    `  hardware      ${f.hardwareLabels.join(", ") || "any"}`,
    `  signed by     ${f.signingKeyId || "-"}`,
    `  created       ${time(f.createTime)} by ${f.creator || "-"}`,
    `  published     ${time(f.publishTime)}`,
  ];
  if (f.releaseNotes) lines.push(`  notes         ${f.releaseNotes}`);
  return lines.join("\n");
}
