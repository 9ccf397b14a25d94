import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";
import { api } from "./api.js";
import { session, type SessionState } from "./auth/session.js";
import { ApiKeysPage } from "./pages/api-keys.js";
import { DevicePage } from "./pages/device.js";
import { FleetPage } from "./pages/fleet.js";
import { LoginPage } from "./pages/login.js";
import { RulesPage } from "./pages/rules.js";
import { navigate, useLocation } from "./router.js";

/** A cheap authenticated call: does the browser's certificate (or token) get us in? */
async function probe(): Promise<boolean> {
  try {
    await api.devices.listDevices({ pageSize: 1 });
    return true;
  } catch (err) {
    const code = ConnectError.from(err).code;
    if (code === Code.Unauthenticated || code === Code.PermissionDenied) return false;
    throw err;
  }
}

function useSession(): SessionState {
  const [s, setS] = useState(session.state);
  useEffect(() => {
    const off = session.subscribe(setS);
    if (session.state.kind === "unknown") session.restore(probe).catch(() => session.restore(async () => false));
    return off;
  }, []);
  return s;
}

export function App() {
  const s = useSession();
  const { route } = useLocation();
  if (s.kind === "unknown") return <div className="splash">Connecting to Tether…</div>;
  if (s.kind === "signed-out") return <LoginPage reason={s.reason} onCertificate={() => session.restore(probe)} />;
  return (
    <div className="shell">
      <header>
        <a className="brand" href="/" onClick={link("/")}>
          Tether
        </a>
        <nav>
          <a href="/" onClick={link("/")} className={route.page === "fleet" || route.page === "device" ? "active" : ""}>
            Fleet
          </a>
          <a href="/rules" onClick={link("/rules")} className={route.page === "rules" ? "active" : ""}>
            Rules
          </a>
          <a href="/api-keys" onClick={link("/api-keys")} className={route.page === "api-keys" ? "active" : ""}>
            API keys
          </a>
        </nav>
        <div className="who">
          {s.kind === "certificate" ? (
            <span title="The browser presented a client certificate from Tether's CA. Remove it from the browser to sign out.">
              signed in with a client certificate
            </span>
          ) : (
            <>
              <span>{s.username}</span>
              <button type="button" onClick={() => void session.logout()}>
                Sign out
              </button>
            </>
          )}
        </div>
      </header>
      <main>
        {route.page === "fleet" && <FleetPage />}
        {route.page === "device" && <DevicePage id={route.id} />}
        {route.page === "rules" && <RulesPage id={route.id} />}
        {route.page === "api-keys" && <ApiKeysPage certificate={s.kind === "certificate"} />}
        {route.page === "login" && <p>You are signed in.</p>}
        {route.page === "not-found" && <p>There is no such page.</p>}
      </main>
    </div>
  );
}

/** An onClick for in-app links: plain clicks navigate without a reload, modified clicks open tabs. */
export function link(to: string) {
  return (e: React.MouseEvent) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(to);
  };
}
