import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { isPlaceholder, productionProblems, refuseUnsafeStart } from "../../src/production-safety.js";

const SECRET = "k3Y8vQ1pZr7sW2mN5bX9cT4hJ6fL0aGd";
const warnings: unknown[] = [];
const log = { warn: (...args: unknown[]) => void warnings.push(args) };

describe("production start refusal", () => {
  it("asks nothing of the embedded mode", () => {
    expect(productionProblems({})).toEqual([]);
    expect(productionProblems({ MQTT_URL: "mqtts://mosquitto:8883" })).toEqual([]);
  });

  it("needs a signing-key secret with DATABASE_URL or AMQP_URL", () => {
    expect(productionProblems({ DATABASE_URL: "postgres://tether@db/tether" })).toEqual([expect.stringMatching(/TETHER_SIGNING_KEY_SECRET is not set/)]);
    expect(productionProblems({ AMQP_URL: "amqp://tether:Zq8x2VbN4@mq:5672" })).toEqual([expect.stringMatching(/TETHER_SIGNING_KEY_SECRET is not set/)]);
    expect(productionProblems({ DATABASE_URL: "postgres://tether@db/tether", TETHER_SIGNING_KEY_SECRET: "short-but-random-Zq8x" })).toEqual([
      expect.stringMatching(/shorter than 32/),
    ]);
    expect(productionProblems({ DATABASE_URL: "postgres://tether@db/tether", TETHER_SIGNING_KEY_SECRET: "change-me" })).toEqual([
      expect.stringMatching(/TETHER_SIGNING_KEY_SECRET is a placeholder/),
    ]);
    expect(productionProblems({ DATABASE_URL: "postgres://tether@db/tether", TETHER_SIGNING_KEY_SECRET: SECRET })).toEqual([]);
  });

  it("refuses the placeholder passwords of deploy/ and .env.example, and RabbitMQ's guest", () => {
    const env = { TETHER_SIGNING_KEY_SECRET: SECRET };
    // deploy/compose/env.example, deploy/k8s/secret.yaml, deploy/systemd/tether.env, .env.example
    expect(productionProblems({ ...env, DATABASE_URL: "postgres://tether@postgres:5432/tether", PGPASSWORD: "change-me" })).toEqual([
      "PGPASSWORD is a placeholder",
    ]);
    expect(productionProblems({ ...env, DATABASE_URL: "postgres://tether:CHANGE_ME@postgres:5432/tether" })).toEqual([
      "DATABASE_URL carries a placeholder password",
    ]);
    expect(productionProblems({ ...env, AMQP_URL: "amqps://tether:change-me@rabbitmq:5671/" })).toEqual(["AMQP_URL carries a placeholder password"]);
    expect(productionProblems({ ...env, AMQP_URL: "amqp://tether:secret@localhost:5672" })).toEqual(["AMQP_URL carries a placeholder password"]);
    expect(productionProblems({ ...env, AMQP_URL: "amqp://guest:guest@127.0.0.1:5672" })).toEqual([expect.stringMatching(/default guest account/)]);
    for (const p of ["change-me", "CHANGE_ME", "ChangeMe", "password", "guest", "change-me-before-use", "<replace with a random value>"])
      expect(isPlaceholder(p), p).toBe(true);
    for (const p of [SECRET, "Zq8x2VbN4", "tether-prod-2f9c1e"]) expect(isPlaceholder(p), p).toBe(false);
  });

  it("never puts a credential in the message", () => {
    const problems = productionProblems({
      DATABASE_URL: "postgres://tether:change-me@db/tether",
      PGPASSWORD: "changeme",
      AMQP_URL: "amqp://tether:CHANGE_ME@mq",
    });
    expect(problems).toHaveLength(4);
    for (const p of problems) expect(p).not.toMatch(/change-me|changeme|CHANGE_ME/);
  });

  it("throws the whole list, or only warns with TETHER_ALLOW_INSECURE=1", () => {
    const unsafe = { DATABASE_URL: "postgres://tether@db/tether", PGPASSWORD: "change-me" };
    expect(() => refuseUnsafeStart(loadConfig(unsafe), log)).toThrow(
      /refusing to start in production mode[\s\S]*TETHER_SIGNING_KEY_SECRET is not set[\s\S]*PGPASSWORD is a placeholder[\s\S]*TETHER_ALLOW_INSECURE=1/,
    );
    warnings.length = 0;
    expect(() => refuseUnsafeStart(loadConfig({ ...unsafe, TETHER_ALLOW_INSECURE: "1" }), log)).not.toThrow();
    expect(warnings).toHaveLength(2);
    expect(() => refuseUnsafeStart(loadConfig({ DATABASE_URL: "postgres://tether@db/tether", TETHER_SIGNING_KEY_SECRET: SECRET }), log)).not.toThrow();
  });
});
