import { execFile } from "node:child_process";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlarmEvent_Type, AlarmSeverity, Alarm_State } from "../../gen/tether/v1/alarm_pb.js";
import { AlarmService } from "../../gen/tether/v1/alarm_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { EventTrigger_Comparison as Comparison } from "../../gen/tether/v1/rule_pb.js";
import { RuleService as Rules } from "../../gen/tether/v1/rule_service_pb.js";
import { Grant_Role, ShareService } from "../../gen/tether/v1/share_service_pb.js";
import { PRESENCE_OFFLINE, PRESENCE_ONLINE, presenceTopic } from "../../src/protocol/topics.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { eventually, rawDevice } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  // No periodic sweep during the test: a reconnect's wake (or app.sweepAlarms) is what clears.
  s = await startTestStack({ TETHER_ALARM_SWEEP_MS: "600000" });
  for (const u of ["olivia", "vera"]) tokens[u] = await userToken(s, u);
  await as("olivia", DeviceService).createDevice({ deviceId: "hot-led", device: { kind: { case: "led", value: {} } } });
  await as("olivia", ShareService).createGrant({
    grant: { principal: "users/vera", target: { case: "device", value: "devices/hot-led" }, role: Grant_Role.VIEWER },
  });
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

function as<S extends Parameters<typeof bearerClient>[1]>(user: string, service: S) {
  return bearerClient(s, service, tokens[user]!);
}
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, TETHER_ADDRESS: s.baseUrl, TETHER_CERTS_DIR: path.join(s.dir, "certs") };
  return new Promise((resolve) => {
    execFile(process.execPath, [path.resolve(import.meta.dirname, "../../bin/tether.js"), ...args], { env, cwd: s.dir }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
const admin = <S extends Parameters<typeof bearerClient>[1]>(service: S) => connectClient(s, service, "grpc");

describe("alarms end to end", () => {
  it("telemetry over MQTT raises and clears an alarm (with hysteresis), seen live by WatchAlarms; a viewer may not acknowledge, the owner may", async () => {
    await as("olivia", Rules).createRule({
      ruleId: "hot-led-temp",
      rule: {
        trigger: { case: "eventTrigger", value: { metric: "temperature_celsius", comparison: Comparison.GT, threshold: 30 } },
        target: { case: "device", value: "devices/hot-led" },
        alarm: { severity: AlarmSeverity.MAJOR, clearThreshold: 28, description: "LED too hot" },
      },
    });
    const ctrl = new AbortController();
    const events: Array<[AlarmEvent_Type, Alarm_State]> = [];
    const watching = (async () => {
      try {
        for await (const r of as("vera", AlarmService).watchAlarms({ filter: { device: "devices/hot-led" } }, { signal: ctrl.signal })) {
          events.push([r.event!.type, r.event!.alarm!.state]);
        }
      } catch (err) {
        if (!ctrl.signal.aborted) throw err;
      }
    })();
    const dev = await rawDevice(s, "hot-led");
    try {
      const base = Date.now() - 60_000;
      const sample = (sec: number, value: number) => ({ metric: "temperature_celsius", value, time: timestampFromDate(new Date(base + sec * 1000)) });
      await dev.send({ case: "telemetry", value: { samples: [sample(0, 25), sample(1, 31), sample(2, 33), sample(3, 29), sample(4, 28.5)] } });
      const [active] = await eventually(async () => {
        const r = await as("vera", AlarmService).listAlarms({ filter: { device: "devices/hot-led" } });
        return r.alarms.length === 1 && r.alarms;
      });
      expect([active!.state, active!.raiseValue, active!.description, active!.rule]).toEqual([Alarm_State.ACTIVE, 31, "LED too hot", "rules/hot-led-temp"]);
      await dev.send({ case: "telemetry", value: { samples: [sample(5, 27)] } });
      const cleared = await eventually(async () => {
        const a = await as("vera", AlarmService).getAlarm({ name: active!.name });
        return a.state === Alarm_State.CLEARED && a;
      });
      expect(cleared.clearValue).toBe(27);
      await expect(as("vera", AlarmService).acknowledgeAlarm({ name: active!.name })).rejects.toMatchObject({ code: Code.PermissionDenied });
      const acked = await as("olivia", AlarmService).acknowledgeAlarm({ name: active!.name, comment: "fan replaced", etag: cleared.etag });
      expect([acked.acknowledged, acked.acknowledger, acked.acknowledgeComment]).toEqual([true, "users/olivia", "fan replaced"]);
      const counts = await as("vera", AlarmService).countAlarms({ filter: { acknowledged: true } });
      expect([counts.total, counts.counts.map((c) => c.severity)]).toEqual([
        1n,
        [AlarmSeverity.CRITICAL, AlarmSeverity.MAJOR, AlarmSeverity.MINOR, AlarmSeverity.WARNING],
      ]);
      await eventually(async () => events.length === 3);
      expect(events).toEqual([
        [AlarmEvent_Type.RAISED, Alarm_State.ACTIVE],
        [AlarmEvent_Type.CLEARED, Alarm_State.CLEARED],
        [AlarmEvent_Type.ACKNOWLEDGED, Alarm_State.CLEARED],
      ]);
    } finally {
      ctrl.abort();
      await watching;
      await dev.close();
    }
  });

  it("an offline alarm is raised by the sweep when the device disconnects, and cleared when it reconnects", async () => {
    await admin(DeviceService).createDevice({ deviceId: "far-led", device: { kind: { case: "led", value: {} } } });
    await admin(Rules).createRule({
      ruleId: "far-led-offline",
      rule: {
        trigger: { case: "eventTrigger", value: { metric: "online", comparison: Comparison.EQ, threshold: 0 } },
        target: { case: "device", value: "devices/far-led" },
        alarm: { severity: AlarmSeverity.CRITICAL },
      },
    });
    const alarms = async () => (await admin(AlarmService).listAlarms({ filter: { rule: "rules/far-led-offline" } })).alarms;
    let dev = await rawDevice(s, "far-led");
    await dev.send({ case: "hello", value: {} });
    await eventually(async () => (await admin(DeviceService).getDevice({ name: "devices/far-led" })).connectivity?.online);
    // A device's last word (its will, or as here its own retained message) is how Tether hears it left.
    await dev.publishRaw(presenceTopic("far-led"), PRESENCE_OFFLINE);
    await dev.close();
    await eventually(async () => !(await admin(DeviceService).getDevice({ name: "devices/far-led" })).connectivity?.online);
    await s.app.sweepAlarms();
    expect((await alarms()).map((a) => [a.state, a.metric])).toEqual([[Alarm_State.ACTIVE, "online"]]);
    dev = await rawDevice(s, "far-led");
    try {
      // As the SDK does: presence first, then Hello. The presence change wakes the sweep.
      await dev.publishRaw(presenceTopic("far-led"), PRESENCE_ONLINE);
      await dev.send({ case: "hello", value: {} });
      await eventually(async () => (await alarms())[0]?.state === Alarm_State.CLEARED, 8000, "cleared on reconnect");
      expect(await alarms()).toHaveLength(1);
    } finally {
      await dev.close();
    }
  });

  it("refuses an alarm rule with a command, naming the field", async () => {
    const err = await admin(Rules)
      .createRule({
        rule: {
          trigger: { case: "eventTrigger", value: { metric: "temperature_celsius", comparison: Comparison.GT, threshold: 30 } },
          target: { case: "device", value: "devices/hot-led" },
          command: { kind: { case: "led", value: { action: { case: "setPower", value: false } } } },
          alarm: { severity: AlarmSeverity.MINOR },
        },
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: Code.InvalidArgument, rawMessage: expect.stringContaining("rule.command: must be unset for an alarm rule") });
  });

  it("the CLI creates an alarm rule, lists, counts and acknowledges its alarms", async () => {
    await admin(DeviceService).createDevice({ deviceId: "cli-led", device: { kind: { case: "led", value: {} } } });
    const made = await cli(
      "rules",
      "create",
      "cli-hot",
      "--alarm",
      "critical",
      "--when",
      "temperature_celsius > 40",
      "--device",
      "cli-led",
      "--clear-at",
      "35",
      "--notify",
      "raise",
      "--escalate-after",
      "30m",
      "--description",
      "overheating",
    );
    expect(made.stderr).toBe("");
    expect(made.stdout).toMatch(/alarm\s+CRITICAL/);
    expect(made.stdout).toMatch(/clear_threshold\s+35/);
    expect(made.stdout).toMatch(/notify\s+raise\n/);
    expect(made.stdout).toMatch(/escalate_after\s+30m/);
    const refused = await cli(
      "rules",
      "create",
      "cli-bad",
      "--alarm",
      "major",
      "--when",
      "temperature_celsius > 40",
      "--device",
      "cli-led",
      "--command",
      "power off",
    );
    expect([refused.code, refused.stderr]).toEqual([1, "--command does not apply to an alarm rule\n"]);
    const dev = await rawDevice(s, "cli-led");
    try {
      await dev.send({ case: "telemetry", value: { samples: [{ metric: "temperature_celsius", value: 45, time: timestampFromDate(new Date()) }] } });
      await eventually(async () => (await admin(AlarmService).listAlarms({ filter: { rule: "rules/cli-hot" } })).alarms.length === 1);
    } finally {
      await dev.close();
    }
    const listed = await cli("alarms", "list", "--rule", "cli-hot", "--state", "active");
    expect(listed.stdout).toMatch(/^ALARM\s+SEVERITY\s+STATE\s+ACKED\s+DEVICE\s+RULE/);
    const id = /^([0-9a-f-]{36})\s+CRITICAL\s+ACTIVE\s+-\s+cli-led\s+cli-hot/m.exec(listed.stdout)?.[1];
    expect(id, listed.stdout).toBeDefined();
    const acked = await cli("alarms", "ack", id!, "--comment", "looking");
    expect(acked.stdout).toMatch(/acknowledged\s+yes, by users\/admin at /);
    const counted = await cli("alarms", "count", "--acked", "yes", "--device", "cli-led");
    expect(counted.stdout).toMatch(/CRITICAL\s+1\n/);
    expect(counted.stdout).toMatch(/total\s+1$/m);
  });
});
