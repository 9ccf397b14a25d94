import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import type { UrlPolicy } from "../core/ports/webhooks.js";

/**
 * Addresses a webhook may not reach in production (SSRF): loopback, "this host", link-local
 * (including the cloud metadata address 169.254.169.254) and multicast. Private ranges stay
 * allowed: on-premises receivers are a normal deployment.
 */
const BLOCKED = new BlockList();
BLOCKED.addSubnet("127.0.0.0", 8, "ipv4");
BLOCKED.addSubnet("0.0.0.0", 8, "ipv4");
BLOCKED.addSubnet("169.254.0.0", 16, "ipv4");
BLOCKED.addSubnet("224.0.0.0", 4, "ipv4");
BLOCKED.addAddress("255.255.255.255", "ipv4");
BLOCKED.addAddress("::1", "ipv6");
BLOCKED.addAddress("::", "ipv6");
BLOCKED.addSubnet("fe80::", 10, "ipv6");
BLOCKED.addSubnet("ff00::", 8, "ipv6");

/** Why `address` is refused, or undefined. IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is judged as IPv4. */
export function blockedAddress(address: string): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const ip = mapped ?? address;
  const family = isIP(ip) === 6 ? "ipv6" : "ipv4";
  return BLOCKED.check(ip, family) ? `${address} is a loopback, link-local, multicast or unspecified address` : undefined;
}

const DEV_HINT = "accepted only with TETHER_WEBHOOK_ALLOW_HTTP=1 (development)";

/**
 * The URL rules of CreateWebhook/UpdateWebhook: https only, no credentials in the URL, and a host
 * that resolves, to no refused address. `allowHttp` (development) lifts the scheme and address
 * rules. The sender checks addresses again at connect time (a name may resolve differently later).
 */
export function createUrlPolicy(opts: { allowHttp: boolean }): UrlPolicy {
  return {
    async check(raw) {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return `"${raw.slice(0, 80)}" is not a URL`;
      }
      if (url.protocol === "http:" && !opts.allowHttp) return `must be an https:// URL: http:// is ${DEV_HINT}`;
      if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an https:// URL";
      if (url.username || url.password) return "must not carry a user name or password";
      if (url.hash) return "must not have a #fragment";
      const host = url.hostname.replace(/^\[|\]$/g, "");
      let addresses: string[];
      try {
        addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
      } catch {
        return `host "${host.slice(0, 80)}" does not resolve`;
      }
      if (opts.allowHttp) return undefined;
      for (const a of addresses) {
        const why = blockedAddress(a);
        if (why) return `host "${host.slice(0, 80)}" resolves to ${why}: ${DEV_HINT}`;
      }
      return undefined;
    },
  };
}
