import { Certificate_OriginSchema, Certificate_State, Certificate_StateSchema, RevocationReasonSchema } from "../../../gen/tether/v1/certificate_pb.js";
import { api } from "../api.js";
import { enumName, timeText } from "../format.js";
import { usePolling } from "../hooks.js";
import { ErrorBanner } from "./error-banner.js";

/**
 * The device's X.509 identities from CertificateService (issued, renewed, revoked). Managing
 * certificates needs an admin; anyone else sees the server's PERMISSION_DENIED as a message.
 */
export function CertificatesPanel({ device }: { device: string }) {
  const q = usePolling((signal) => api.certificates.listCertificates({ parent: `devices/${device}`, pageSize: 100 }, { signal }), 30_000, [device]);
  const certs = q.value?.certificates ?? [];
  const label = (s: string) => s.toLowerCase().replaceAll("_", " ");
  return (
    <section className="panel certificates">
      <h2>Certificates</h2>
      <ErrorBanner error={q.error} />
      {q.value && certs.length === 0 && (
        <p className="muted">
          No certificate issued through the API yet (<code>tether certs issue {device}</code>). A device may also use a certificate from Tether's CA with CN{" "}
          <code>{device}</code> and OU <code>devices</code>.
        </p>
      )}
      {certs.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Serial</th>
              <th>State</th>
              <th>Origin</th>
              <th>Valid from</th>
              <th>Expires</th>
            </tr>
          </thead>
          <tbody>
            {certs.map((c) => (
              <tr key={c.serialNumber}>
                <td>
                  <code>{c.serialNumber}</code>
                </td>
                <td>
                  <span className={`badge ${c.state === Certificate_State.ACTIVE ? "state-succeeded" : "state-failed"}`}>
                    {enumName(Certificate_StateSchema, c.state)}
                  </span>
                  {c.state === Certificate_State.REVOKED && c.revocationReason !== 0 && (
                    <span className="muted"> ({label(enumName(RevocationReasonSchema, c.revocationReason))})</span>
                  )}
                </td>
                <td>{label(enumName(Certificate_OriginSchema, c.origin))}</td>
                <td>{timeText(c.startTime)}</td>
                <td>{timeText(c.expireTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
