import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { useState } from "react";
import type { ApiKey } from "../../../gen/tether/v1/user_pb.js";
import { api } from "../api.js";
import { ErrorBanner, FieldError } from "../components/error-banner.js";
import { type ReadableError, fieldsUnder, readable } from "../errors.js";
import { ago, timeText } from "../format.js";
import { useNow, usePolling } from "../hooks.js";

/** Lifetimes offered for a new key, in days; "never" keeps it until revoked. */
const LIFETIMES: Array<[string, string]> = [
  ["30", "30 days"],
  ["90", "90 days"],
  ["365", "1 year"],
  ["never", "never"],
];

/** ApiKey.expiration for a lifetime choice: a `ttl`, so the server's clock decides the expiry time. */
function expiration(days: string): ApiKey["expiration"] {
  return days === "never" ? { case: undefined } : { case: "ttl", value: create(DurationSchema, { seconds: BigInt(Number(days) * 86_400) }) };
}

/**
 * The caller's API keys (`users/me`): list with expiry and last use, create, revoke. Signed in with
 * a password, creating a key asks for it again (CreateApiKey's `current_password`): a stolen
 * access token alone cannot mint a key. With a client certificate no password is needed.
 */
export function ApiKeysPage({ certificate }: { certificate: boolean }) {
  const keys = usePolling((signal) => api.users.listApiKeys({ parent: "users/me" }, { signal }), 0, []);
  const [displayName, setDisplayName] = useState("");
  const [days, setDays] = useState("90");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<ReadableError>();
  const [created, setCreated] = useState<ApiKey>();
  const [busy, setBusy] = useState(false);
  const now = useNow(30_000);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setCreated(undefined);
    try {
      const key = await api.users.createApiKey({
        parent: "users/me",
        apiKey: { displayName, expiration: expiration(days) },
        currentPassword: certificate ? "" : password,
      });
      setCreated(key);
      setDisplayName("");
      keys.reload();
    } catch (err) {
      setError(readable(err));
    } finally {
      setPassword(""); // never kept longer than one attempt
      setBusy(false);
    }
  };
  const revoke = async (name: string) => {
    try {
      await api.users.deleteApiKey({ name });
      if (created?.name === name) setCreated(undefined);
      keys.reload();
    } catch (err) {
      setError(readable(err));
    }
  };

  return (
    <div className="api-keys">
      <h1>API keys</h1>
      <p className="note">
        A key acts as you for scripts: send it as <code>authorization: Bearer &lt;secret&gt;</code>. It works until it expires or you revoke it; changing your
        password does not revoke it.
      </p>
      <form onSubmit={submit}>
        <label>
          What it is for
          <input name="display_name" value={displayName} maxLength={256} onChange={(e) => setDisplayName(e.target.value)} />
        </label>
        <FieldError messages={fieldsUnder(error?.fields ?? {}, "api_key.display_name")} />
        <label>
          Expires after
          <select name="expires" value={days} onChange={(e) => setDays(e.target.value)}>
            {LIFETIMES.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </label>
        {!certificate && (
          <label>
            Your current password
            <input
              name="current_password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              required
            />
          </label>
        )}
        <FieldError messages={fieldsUnder(error?.fields ?? {}, "current_password")} />
        <ErrorBanner error={error} />
        <button type="submit" disabled={busy}>
          Create key
        </button>
      </form>
      {created && (
        <div className="secret" role="status">
          <p>
            <strong>{created.displayName || created.name}</strong>: copy the secret now, it is shown this once.
          </p>
          <code className="secret-value">{created.secret}</code>
        </div>
      )}
      <ErrorBanner error={keys.error} />
      <table>
        <thead>
          <tr>
            <th>Key</th>
            <th>For</th>
            <th>Created</th>
            <th>Expires</th>
            <th>Last used</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(keys.value?.apiKeys ?? []).map((k) => (
            <tr key={k.name} data-key={k.name}>
              <td>{k.name.split("/").at(-1)}</td>
              <td>{k.displayName || "—"}</td>
              <td>{timeText(k.createTime)}</td>
              <td className="expires">{k.expiration.case === "expireTime" ? timeText(k.expiration.value) : "never"}</td>
              <td className="last-used">{ago(k.lastUsedTime, now)}</td>
              <td>
                <button type="button" onClick={() => void revoke(k.name)}>
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
