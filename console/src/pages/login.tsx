import { Code } from "@connectrpc/connect";
import { useState } from "react";
import { AuthError, session } from "../auth/session.js";

/**
 * Password sign-in with `tether.v1.AuthService/Login` (see auth/session.ts) for users created with
 * UserService (`tether users create`). Signing in with a client certificate needs no form: import
 * the certificate in the browser and retry.
 */
export function LoginPage({ reason, onCertificate }: { reason?: string; onCertificate: () => Promise<void> }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await session.login(username, password);
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="login">
      <h1>Tether</h1>
      {reason && <p className="note">{reason}</p>}
      <form onSubmit={submit}>
        <label>
          User name
          <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        {error && (
          <div className="error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <p className="note">
        Or sign in with a client certificate issued by this Tether's CA (OU=users), imported into your browser.{" "}
        <button type="button" className="link" onClick={() => void onCertificate()}>
          Try again with my certificate
        </button>
      </p>
    </div>
  );
}

/** What the form says when sign-in fails. */
function message(err: unknown): string {
  if (!(err instanceof AuthError)) return err instanceof Error ? err.message : String(err);
  if (err.code === Code.Unauthenticated) return "Wrong user name or password.";
  if (err.code === Code.ResourceExhausted) return `Too many failed attempts: ${err.message}`;
  if (err.code === Code.Unavailable) return "Tether is unreachable. Check your connection and try again.";
  return err.message;
}
