// Keeps /crl/crl.pem equal to Tether's current CRL for Mosquitto (docker-compose.yml, service
// crl-sync). The CRL is public and signed by the CA; it is fetched over TLS checked against the CA
// (NODE_EXTRA_CA_CERTS) and replaced atomically, so Mosquitto never reads half a file. Until a
// replica answers, the empty CRL from make-certs.sh is used, so Mosquitto can start.
import { copyFile, readFile, rename, writeFile } from "node:fs/promises";

const url = process.env.CRL_URL ?? "https://tether:8443/crl.pem";
// The paths of the Compose service; tests/integration/crl-sync.test.ts points them elsewhere.
const target = process.env.CRL_FILE ?? "/crl/crl.pem";
const seed = process.env.CRL_SEED ?? "/pki/crl.pem";
const intervalMs = Number(process.env.CRL_SYNC_INTERVAL_S ?? "10") * 1000;

let current = await readFile(target, "utf8").catch(async () => {
  await copyFile(seed, target);
  return readFile(target, "utf8");
});

async function sync() {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const pem = await res.text();
    if (!res.ok || !pem.startsWith("-----BEGIN X509 CRL-----") || pem === current) return;
    await writeFile(`${target}.tmp`, pem, { mode: 0o644 });
    await rename(`${target}.tmp`, target);
    current = pem;
    console.log(`crl-sync: new CRL from ${url}`);
  } catch (err) {
    console.error(`crl-sync: ${url}: ${err instanceof Error ? err.message : err}`);
  }
}

await sync();
setInterval(sync, intervalMs);
process.on("SIGTERM", () => process.exit(0));
