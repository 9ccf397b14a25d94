import { useEffect, useState } from "react";

/**
 * A tiny history router: the console has a handful of routes, not worth a dependency. Tether's static
 * file handler answers any extension-less path with index.html, so deep links survive a reload.
 */
export type Route =
  | { page: "fleet" }
  | { page: "device"; id: string }
  | { page: "rules"; id?: string }
  | { page: "login" }
  | { page: "api-keys" }
  | { page: "not-found" };

export function parse(pathname: string): Route {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0 || (parts[0] === "devices" && parts.length === 1)) return { page: "fleet" };
  if (parts[0] === "devices" && parts.length === 2) return { page: "device", id: parts[1]! };
  if (parts[0] === "rules" && parts.length <= 2) return { page: "rules", id: parts[1] };
  if (parts[0] === "login" && parts.length === 1) return { page: "login" };
  if (parts[0] === "api-keys" && parts.length === 1) return { page: "api-keys" };
  return { page: "not-found" };
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => {
  for (const l of listeners) l();
});

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, "", to);
  for (const l of listeners) l();
}

export function useLocation(): { route: Route; search: URLSearchParams } {
  const [, tick] = useState(0);
  useEffect(() => {
    const l = () => tick((n) => n + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return { route: parse(location.pathname), search: new URLSearchParams(location.search) };
}
