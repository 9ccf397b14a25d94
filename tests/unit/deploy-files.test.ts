import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { isPlaceholder, productionProblems } from "../../src/production-safety.js";

/**
 * The files in deploy/ are copied as they are, so what they promise is checked here, without a
 * Docker engine or a cluster: which keys each container gets, that every deployment gives Tether
 * its signing-key secret from a secret, the NetworkPolicy, the systemd hardening, the brokers'
 * settings. .ci/run adds `docker compose config` and `kubectl kustomize` where those exist.
 */
const DEPLOY = path.resolve(import.meta.dirname, "../../deploy");
const read = (p: string) => readFileSync(path.join(DEPLOY, p), "utf8");

type Service = {
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: Array<string | { source?: string }>;
};
const compose = parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };

/** What each Compose service may see of deploy/certs: its own certificate and key, the CA certificate, the public CRL. */
const PKI_FILES: Record<string, string[]> = {
  postgres: ["postgres.crt", "postgres.key"],
  rabbitmq: ["ca.crt", "rabbitmq.crt", "rabbitmq.key"],
  mosquitto: ["ca.crt", "mosquitto.crt", "mosquitto.key"],
  "crl-sync": ["ca.crt", "crl.pem"],
  migrate: ["ca.crt"],
  // Tether is the CA that issues device certificates: the one holder of ca.key.
  "tether-1": ["ca.crt", "ca.key", "server.crt", "server.key"],
  "tether-2": ["ca.crt", "ca.key", "server.crt", "server.key"],
  lb: [],
};

function sources(s: Service): string[] {
  return (s.volumes ?? []).map((v) => (typeof v === "string" ? v.split(":")[0]! : (v.source ?? "")));
}

describe("deploy/docker-compose.yml", () => {
  it("mounts into each container only its own certificate and key and the CA certificate", () => {
    expect(Object.keys(compose.services).sort()).toEqual(Object.keys(PKI_FILES).sort());
    for (const [name, service] of Object.entries(compose.services)) {
      const pki = sources(service).filter((src) => /^\.\/certs(\/|$)/.test(src));
      // A directory mount would hand over every key in it.
      for (const src of pki) expect(src, `${name} mounts ${src}`).toMatch(/^\.\/certs\/[^/]+\.(crt|key|pem)$/);
      expect(pki.map((src) => path.basename(src)).sort(), name).toEqual([...PKI_FILES[name]!].sort());
      expect(
        pki.some((src) => src.endsWith("admin.key")),
        `${name} mounts admin.key`,
      ).toBe(false);
    }
  });

  it("gives every replica TETHER_SIGNING_KEY_SECRET from deploy/.env, required, and AMQPS", () => {
    const replicas = Object.entries(compose.services).filter(([, s]) => s.image === "tether:dev" && s.command?.includes("serve"));
    expect(replicas.map(([n]) => n)).toEqual(["tether-1", "tether-2"]);
    for (const [name, s] of replicas) {
      expect(s.environment?.TETHER_SIGNING_KEY_SECRET, name).toMatch(/^\$\{TETHER_SIGNING_KEY_SECRET:\?.+\}$/);
      expect(s.environment?.AMQP_URL, name).toMatch(/^amqps:\/\//);
    }
    // The migrate job needs the database only.
    expect(Object.keys(compose.services.migrate!.environment ?? {}).sort()).toEqual(["DATABASE_URL", "LOG_LEVEL", "NODE_EXTRA_CA_CERTS", "PGPASSWORD"]);
  });

  it("ships an env.example that Tether refuses to start with until every placeholder is replaced", () => {
    const env = Object.fromEntries(
      read("compose/env.example")
        .split("\n")
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
    );
    for (const k of ["POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "TETHER_SIGNING_KEY_SECRET"]) expect(isPlaceholder(env[k] ?? ""), k).toBe(true);
    const tether = compose.services["tether-1"]!.environment!;
    const resolved = Object.fromEntries(
      Object.entries(tether).map(([k, v]) => [k, String(v).replace(/\$\{(\w+)(?::[-?][^}]*)?\}/g, (_, n: string) => env[n] ?? "")]),
    );
    expect(productionProblems(resolved)).toEqual([
      expect.stringMatching(/TETHER_SIGNING_KEY_SECRET is a placeholder/),
      "PGPASSWORD is a placeholder",
      "AMQP_URL carries a placeholder password",
    ]);
  });

  it("has Mosquitto reread the CRL when crl-sync replaces it", () => {
    const mosquitto = compose.services.mosquitto!;
    expect(mosquitto.entrypoint?.join(" ")).toContain("/etc/mosquitto/compose-entrypoint.sh");
    expect(sources(mosquitto)).toContain("./mosquitto/compose-entrypoint.sh");
    expect(mosquitto.volumes).toContain("crl:/crl:ro");
    expect(compose.services["crl-sync"]!.volumes).toContain("crl:/crl");
    const entry = read("mosquitto/compose-entrypoint.sh");
    expect(entry).toMatch(/ln -sf \/crl\/crl\.pem \/etc\/mosquitto\/certs\/crl\.pem/);
    expect(entry).toMatch(/kill -HUP "\$pid"/);
  });

  it("lets PostgreSQL trust nobody for being local", () => {
    const rules = read("compose/pg_hba.conf")
      .split("\n")
      .filter((l) => l.trim() && !l.trim().startsWith("#"));
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) expect(rule).not.toMatch(/\b(trust|password|md5)\s*$/);
    for (const rule of rules.filter((r) => r.startsWith("host"))) expect(rule).toMatch(/^hostssl\s/);
  });
});

describe("deploy/mosquitto and deploy/rabbitmq", () => {
  const directives = (file: string) =>
    new Map(
      read(file)
        .split("\n")
        .filter((l) => l.trim() && !l.startsWith("#"))
        .map((l) => l.split(/\s+(.*)/s).slice(0, 2) as [string, string]),
    );

  it("bounds what Mosquitto queues per client", () => {
    const conf = directives("mosquitto/mosquitto.conf");
    const bytes = Number(conf.get("max_queued_bytes"));
    const messages = Number(conf.get("max_queued_messages"));
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(256 * 1024 * 1024);
    expect(messages).toBeGreaterThan(0);
  });

  it("serves AMQP over TLS only, with no guest and no administrator for Tether", () => {
    const conf = new Map(
      read("rabbitmq/rabbitmq.conf")
        .split("\n")
        .filter((l) => l.includes("=") && !l.startsWith("#"))
        .map((l) => l.split(/\s*=\s*(.*)/s).slice(0, 2) as [string, string]),
    );
    expect(conf.get("listeners.tcp")).toBe("none");
    expect(conf.has("listeners.tcp.default")).toBe(false);
    expect(conf.get("listeners.ssl.default")).toBeDefined();
    expect(conf.get("mqtt.listeners.tcp")).toBe("none");
    expect(conf.get("default_user")).toBe("tether");
    // Without any default_user_tags.* line RabbitMQ makes the default user an administrator.
    expect([...conf.entries()].filter(([k]) => k.startsWith("default_user_tags."))).toEqual([["default_user_tags.administrator", "false"]]);
    // loopback_users = none would let a guest account log in from anywhere.
    expect(conf.has("loopback_users")).toBe(false);
    for (const p of ["configure", "read", "write"]) expect(conf.get(`default_permissions.${p}`), p).not.toBe(".*");
  });
});

type K8sObject = {
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
};
type Container = {
  name: string;
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  envFrom?: Array<{ secretRef?: { name: string }; configMapRef?: { name: string } }>;
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string }>;
};
type PodSpec = {
  automountServiceAccountToken?: boolean;
  serviceAccountName?: string;
  containers: Container[];
  initContainers?: Container[];
  volumes: Array<{ name: string; secret?: { secretName: string; items?: unknown[] } }>;
};

describe("deploy/k8s", () => {
  const kustomization = parse(read("k8s/kustomization.yaml")) as { resources: string[] };
  const objects = kustomization.resources.flatMap((f) => parseAllDocuments(read(`k8s/${f}`)).map((d) => d.toJS() as K8sObject)).filter(Boolean);
  const deployment = objects.find((o) => o.kind === "Deployment")!;
  const template = deployment.spec!.template as { metadata: { labels: Record<string, string> }; spec: PodSpec };
  const pod = template.spec;
  const secrets = new Map(objects.filter((o) => o.kind === "Secret").map((o) => [o.metadata.name, Object.keys({ ...o.data, ...o.stringData })]));

  it("mounts no service-account token", () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    const account = objects.find((o) => o.kind === "ServiceAccount" && o.metadata.name === pod.serviceAccountName) as
      | { automountServiceAccountToken?: boolean }
      | undefined;
    expect(account?.automountServiceAccountToken).toBe(false);
  });

  it("gives Tether TETHER_SIGNING_KEY_SECRET from a secret of its own", () => {
    const tether = pod.containers.find((c) => c.args?.includes("serve"))!;
    const v = tether.env?.find((e) => e.name === "TETHER_SIGNING_KEY_SECRET");
    expect(v?.value).toBeUndefined();
    const ref = v?.valueFrom?.secretKeyRef;
    expect(secrets.get(ref?.name ?? "")).toEqual([ref?.key]);
    expect(objects.find((o) => o.kind === "ConfigMap")?.data?.TETHER_SIGNING_KEY_SECRET).toBeUndefined();
  });

  it("splits the secrets so each container gets only what it uses", () => {
    for (const keys of secrets.values()) expect(keys).not.toContain("admin.key");
    const secretOf = (volume: string) => pod.volumes.find((v) => v.name === volume)?.secret?.secretName;
    const seen = (c: Container) => ({
      env: [
        ...(c.envFrom ?? []).flatMap((e) => (e.secretRef ? (secrets.get(e.secretRef.name) ?? []) : [])),
        ...(c.env ?? []).filter((e) => e.valueFrom?.secretKeyRef).map((e) => e.name),
      ].sort(),
      // A secret volume mounted whole hands over every key in it; file by file (subPath) only those.
      files: (c.volumeMounts ?? [])
        .filter((m) => secretOf(m.name))
        .flatMap((m) => (m.subPath ? [m.subPath] : (secrets.get(secretOf(m.name)!) ?? [])))
        .sort(),
    });
    const migrate = pod.initContainers?.find((c) => c.args?.includes("migrate"));
    expect(migrate && seen(migrate)).toEqual({ env: ["DATABASE_URL", "PGPASSWORD"], files: ["ca.crt"] });
    const tether = pod.containers.find((c) => c.args?.includes("serve"))!;
    expect(seen(tether)).toEqual({
      env: ["AMQP_URL", "DATABASE_URL", "PGPASSWORD", "TETHER_SIGNING_KEY_SECRET"],
      files: ["ca.crt", "ca.key", "server.crt", "server.key"],
    });
  });

  it("has a NetworkPolicy: the API from the ingress controller, the ops port from monitoring, nothing else", () => {
    const policy = objects.find((o) => o.kind === "NetworkPolicy") as
      | {
          spec: {
            podSelector: { matchLabels: Record<string, string> };
            policyTypes: string[];
            ingress: Array<{ from?: Array<{ namespaceSelector?: { matchLabels: Record<string, string> } }>; ports?: Array<{ port: string | number }> }>;
          };
        }
      | undefined;
    expect(policy).toBeDefined();
    const { podSelector, policyTypes, ingress } = policy!.spec;
    for (const [k, v] of Object.entries(podSelector.matchLabels)) expect(template.metadata.labels[k]).toBe(v);
    expect(policyTypes).toContain("Ingress");
    const byPort = new Map(
      ingress.map((rule) => [rule.ports?.map((p) => p.port).join(","), rule.from?.map((f) => f.namespaceSelector?.matchLabels["kubernetes.io/metadata.name"])]),
    );
    expect(ingress).toHaveLength(2);
    expect(byPort.get("api")).toEqual(["ingress-nginx"]);
    expect(byPort.get("ops")).toEqual(["monitoring"]);
  });
});

describe("deploy/systemd", () => {
  const unit = read("systemd/tether.service");
  const settings = new Set(unit.split("\n").filter((l) => /^[A-Za-z]+=/.test(l)));

  it("creates files 0600 and locks the service down", () => {
    for (const s of [
      "UMask=0077",
      "StateDirectoryMode=0700",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "PrivateDevices=yes",
      "ProtectKernelTunables=yes",
      "ProtectKernelModules=yes",
      "ProtectKernelLogs=yes",
      "ProtectControlGroups=yes",
      "ProtectClock=yes",
      "ProtectHostname=yes",
      "ProtectProc=invisible",
      "RestrictSUIDSGID=yes",
      "RestrictRealtime=yes",
      "RestrictNamespaces=yes",
      "LockPersonality=yes",
      "CapabilityBoundingSet=",
      "SystemCallArchitectures=native",
    ]) {
      expect(settings.has(s), s).toBe(true);
    }
  });

  it("sets TETHER_SIGNING_KEY_SECRET in an env file documented as 0600", () => {
    const env = read("systemd/tether.env");
    expect(env).toMatch(/^TETHER_SIGNING_KEY_SECRET=/m);
    expect(env.split("\n")[0]).toMatch(/mode 0600/);
    expect(read("README.md")).toMatch(/install -D -m 0600 [^\n]*tether\.env/);
  });
});

describe("deploy/ shell scripts", () => {
  const scripts = (function walk(dir: string): string[] {
    return readdirSync(dir).flatMap((f) =>
      statSync(path.join(dir, f)).isDirectory() ? walk(path.join(dir, f)) : f.endsWith(".sh") ? [path.join(dir, f)] : [],
    );
  })(DEPLOY);

  it.each(scripts.map((s) => path.relative(DEPLOY, s)))("%s parses (sh -n)", (script) => {
    expect(() => execFileSync("sh", ["-n", path.join(DEPLOY, script)], { stdio: "pipe" })).not.toThrow();
  });
});
