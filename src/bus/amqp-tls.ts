import { rootCertificates } from "node:tls";
import { type DevPki, issueServiceCertificate } from "../pki/dev-pki.js";

/** What amqplib hands to `tls.connect` for an `amqps://` URL. */
export interface AmqpTls {
  ca: string[];
  cert: string;
  key: string;
}

/**
 * Tether's TLS identity towards RabbitMQ on `amqps://`: RabbitMQ shares one set of TLS options
 * between its AMQPS and MQTT listeners, and the MQTT one requires a client certificate
 * (`fail_if_no_peer_cert`), so Tether presents a `tether` service certificate issued in memory at
 * start (never written to disk), then logs in with the user and password of AMQP_URL. The broker's
 * certificate is checked against the public roots and Tether's CA. `amqp://` gets nothing.
 */
export async function amqpTls(url: string, pki: DevPki): Promise<AmqpTls | undefined> {
  if (!url.startsWith("amqps:")) return undefined;
  const service = await issueServiceCertificate(pki.ca, "tether");
  return { ca: [...rootCertificates, pki.caPem], cert: service.certPem, key: service.keyPem };
}
