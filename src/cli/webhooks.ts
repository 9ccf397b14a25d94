import { parseArgs } from "node:util";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Webhook, Webhook_PayloadFormat, WebhookDelivery_State, WebhookSchema } from "../../gen/tether/v1/webhook_pb.js";
import { ListWebhookDeliveriesResponseSchema, ListWebhooksResponseSchema, WebhookService } from "../../gen/tether/v1/webhook_service_pb.js";
import { deletedText, exists } from "./allow-missing.js";
import { usageError } from "./cli-error.js";
import { connectClient } from "./client.js";
import { json, table, time } from "./format.js";

export const WEBHOOKS_USAGE = `tether webhooks <command> [flags]      (admins only)

  create <id> --url https://host/path --events TYPE[,TYPE...] [--device-filter F]
         [--format json|binary] [--display-name S]          (prints the signing secret once)
      TYPE:  task.state_changed, device.created, device.updated, device.deleted, job.progress, ...
      F:     ListDevices syntax, e.g. 'labels.room = "kitchen"'
  list [--page-size N] [--page-token T]
  get <id>
  update <id> [--url U] [--events T,...] [--device-filter F] [--format json|binary]
         [--display-name S] [--disable | --enable] [--etag E]   (changes only the fields given)
  delete <id> [--etag E] [--allow-missing]
  deliveries <id> [--state pending|delivered|failed|dead] [--page-size N] [--page-token T]
  replay <id> <delivery>        (a DEAD delivery, sent again with the same event id)
  rotate-secret <id> [--keep-previous 24h]   (prints the new secret once; the old one also
                                              signs for --keep-previous: s, m, h or d; 0s: not at all)

Global: --json (protobuf JSON output), --address https://host:port, --certs DIR`;

const WHERE = "tether webhooks";
const webhookName = (id: string) => (id.startsWith("webhooks/") ? id : `webhooks/${id}`);
const FORMATS: Record<string, Webhook_PayloadFormat> = { json: Webhook_PayloadFormat.JSON, binary: Webhook_PayloadFormat.BINARY };
const STATES: Record<string, WebhookDelivery_State> = {
  pending: WebhookDelivery_State.PENDING,
  delivered: WebhookDelivery_State.DELIVERED,
  failed: WebhookDelivery_State.FAILED,
  dead: WebhookDelivery_State.DEAD,
};

/** `--events a,b --events c` → [a, b, c]. */
const eventTypes = (values: string[] | undefined) =>
  (values ?? [])
    .flatMap((v) => v.split(","))
    .map((t) => t.trim())
    .filter(Boolean);

function payloadFormat(flag: string | undefined): Webhook_PayloadFormat | undefined {
  if (flag === undefined) return undefined;
  const f = FORMATS[flag.toLowerCase()];
  if (f === undefined) throw usageError(`--format ${flag}: expected json or binary`, WHERE);
  return f;
}

/** `24h` as milliseconds (s, m, h or d). */
function durationMs(flag: string): number {
  const m = /^(\d{1,9})([smhd])$/.exec(flag.trim());
  if (!m) throw usageError(`--keep-previous ${flag}: expected a number and a unit, e.g. 3600s, 90m, 12h, 7d`, WHERE);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
}

/** `tether webhooks ...` */
export async function webhooksCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      events: { type: "string", multiple: true },
      "device-filter": { type: "string" },
      format: { type: "string" },
      "display-name": { type: "string" },
      disable: { type: "boolean" },
      enable: { type: "boolean" },
      state: { type: "string" },
      "keep-previous": { type: "string" },
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      "page-size": { type: "string" },
      "page-token": { type: "string" },
      etag: { type: "string" },
      "allow-missing": { type: "boolean" },
    },
  });
  const id = (what = "webhook id") => {
    if (!p[0]) throw usageError(`missing ${what} for "tether webhooks ${sub}"`, WHERE);
    return webhookName(p[0]);
  };
  // Flag values are checked before any connection: a usage error (exit 2) either way.
  const format = payloadFormat(v.format);
  if (v.disable && v.enable) throw usageError("give --disable or --enable, not both", WHERE);
  const state = v.state === undefined ? undefined : STATES[v.state.toLowerCase()];
  if (v.state !== undefined && state === undefined) throw usageError(`--state ${v.state}: expected pending, delivered, failed or dead`, WHERE);
  const keepMs = v["keep-previous"] === undefined ? undefined : durationMs(v["keep-previous"]);

  const client = connectClient(WebhookService, { address: v.address, certsDir: v.certs });
  const out = (w: Webhook) => console.log(v.json ? json(WebhookSchema, w) : describe(w));
  /** Create and rotate answer with the secret: shown here once, never again by any call. */
  const withSecret = (w: Webhook) =>
    console.log(v.json ? json(WebhookSchema, w) : `${describe(w)}\n\nsigning secret (shown once; verify Tether-Signature with it):\n${w.secret}`);
  const page = () => ({ pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });

  switch (sub) {
    case "create": {
      const name = id();
      if (!v.url) throw usageError("tether webhooks create needs --url", WHERE);
      if (eventTypes(v.events).length === 0) throw usageError("tether webhooks create needs --events (one or more event types)", WHERE);
      return withSecret(
        await client.createWebhook({
          webhookId: name.slice("webhooks/".length),
          webhook: {
            url: v.url,
            eventTypes: eventTypes(v.events),
            deviceFilter: v["device-filter"] ?? "",
            payloadFormat: format ?? Webhook_PayloadFormat.JSON,
            displayName: v["display-name"] ?? "",
          },
        }),
      );
    }
    case "get":
      return out(await client.getWebhook({ name: id() }));
    case "list": {
      const res = await client.listWebhooks(page());
      if (v.json) return console.log(json(ListWebhooksResponseSchema, res));
      console.log(
        table(
          ["WEBHOOK", "URL", "EVENTS", "DEVICE FILTER", "STATE"],
          res.webhooks.map((w) => [w.name.slice(9), w.url, w.eventTypes.join(","), w.deviceFilter || "-", w.disabled ? "disabled" : "enabled"]),
        ),
      );
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "update": {
      const name = id();
      const paths: string[] = [];
      const webhook: Partial<Omit<Webhook, "$typeName">> = { name, etag: v.etag ?? "" };
      const set = <K extends "url" | "eventTypes" | "deviceFilter" | "payloadFormat" | "displayName" | "disabled">(
        path: string,
        key: K,
        value: Webhook[K] | undefined,
      ) => {
        if (value === undefined) return;
        paths.push(path);
        webhook[key] = value;
      };
      set("url", "url", v.url);
      set("event_types", "eventTypes", v.events === undefined ? undefined : eventTypes(v.events));
      set("device_filter", "deviceFilter", v["device-filter"]);
      set("payload_format", "payloadFormat", format);
      set("display_name", "displayName", v["display-name"]);
      set("disabled", "disabled", v.disable || v.enable ? Boolean(v.disable) : undefined);
      if (paths.length === 0)
        throw usageError("nothing to update: give --url, --events, --device-filter, --format, --display-name, --disable or --enable", WHERE);
      return out(await client.updateWebhook({ webhook, updateMask: { paths } }));
    }
    case "delete": {
      const found = !v["allow-missing"] || (await exists(() => client.getWebhook({ name: id() })));
      await client.deleteWebhook({ name: id(), etag: v.etag ?? "", allowMissing: v["allow-missing"] ?? false });
      console.log(deletedText(id(), found));
      return;
    }
    case "deliveries": {
      const res = await client.listWebhookDeliveries({ parent: id(), state, ...page() });
      if (v.json) return console.log(json(ListWebhookDeliveriesResponseSchema, res));
      console.log(
        table(
          ["DELIVERY", "EVENT", "DEVICE", "STATE", "ATTEMPTS", "LAST STATUS", "LAST ERROR", "CREATED"],
          res.deliveries.map((d) => [
            d.name.split("/").at(-1)!,
            d.eventType,
            d.device || "-",
            WebhookDelivery_State[d.state] ?? "-",
            String(d.attemptCount),
            d.lastStatus ? String(d.lastStatus) : "-",
            d.lastError || "-",
            time(d.createTime),
          ]),
        ),
      );
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "replay": {
      // `replay <id> <delivery>` (the id `deliveries` prints) or the delivery's full name.
      const full = p[0]?.includes("/deliveries/") ? p[0] : undefined;
      if (!full && !p[1]) throw usageError('missing delivery for "tether webhooks replay"', WHERE);
      const d = await client.replayWebhookDelivery({ name: full ?? `${id()}/deliveries/${p[1]}` });
      console.log(`${d.name}: ${WebhookDelivery_State[d.state]} (sent again with event id ${d.eventId})`);
      return;
    }
    case "rotate-secret": {
      const name = id();
      const previousSecretExpireTime = keepMs === undefined ? undefined : timestampFromDate(new Date(Date.now() + keepMs));
      return withSecret(await client.rotateWebhookSecret({ name, previousSecretExpireTime }));
    }
    default:
      throw usageError(`unknown command "${sub ?? ""}" for "tether webhooks"`, WHERE);
  }
}

function describe(w: Webhook): string {
  return table(
    ["FIELD", "VALUE"],
    [
      ["name", w.name],
      ["display_name", w.displayName || "-"],
      ["url", w.url],
      ["event_types", w.eventTypes.join(", ")],
      ["device_filter", w.deviceFilter || "-"],
      ["payload_format", w.payloadFormat === Webhook_PayloadFormat.BINARY ? "binary" : "json"],
      ["disabled", w.disabled ? "yes" : "no"],
      ["previous_secret_expire_time", time(w.previousSecretExpireTime)],
      ["create_time", time(w.createTime)],
      ["update_time", time(w.updateTime)],
      ["etag", w.etag],
    ],
  );
}
