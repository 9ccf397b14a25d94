import { readFile } from "node:fs/promises";
import type { TetherConfig } from "../config.js";
import { type DevPki, issueServiceCertificate } from "../pki/dev-pki.js";

/**
 * The bridge's TLS identity: `MQTT_CA`/`MQTT_CERT`/`MQTT_KEY` files when given (an operator's
 * PKI), otherwise Tether's CA and a `tether` service certificate issued in memory at every start,
 * never written to disk. An external broker must trust that CA and see CN `tether` (its ACL user).
 */
export async function bridgeTls(link: TetherConfig["mqttLink"], pki: DevPki): Promise<{ ca: string; cert: string; key: string }> {
  const { caFile, certFile, keyFile } = link;
  if ((certFile === undefined) !== (keyFile === undefined)) throw new Error("MQTT_CERT and MQTT_KEY go together: set both or neither");
  const ca = caFile ? await readFile(caFile, "utf8") : pki.caPem;
  if (certFile && keyFile) return { ca, cert: await readFile(certFile, "utf8"), key: await readFile(keyFile, "utf8") };
  const service = await issueServiceCertificate(pki.ca, "tether");
  return { ca, cert: service.certPem, key: service.keyPem };
}
