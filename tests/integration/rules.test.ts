import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { EventTrigger_Comparison as Comparison, RuleRun_State as RunState } from "../../gen/tether/v1/rule_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { Task_State as TaskState } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { rulesCommand } from "../../src/cli/rules.js";
import { coffeeSim, eventually, ledSim, rawDevice } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack();
});
afterAll(async () => {
  await s?.cleanup();
});

const rules = () => connectClient(s, RuleService, "grpc");
const devices = () => connectClient(s, DeviceService, "connect");
const tasks = () => connectClient(s, TaskService, "connect");
const led = (id: string, labels: Record<string, string> = {}) => devices().createDevice({ deviceId: id, device: { labels, kind: { case: "led", value: {} } } });
const coffee = (id: string, labels: Record<string, string> = {}) =>
  devices().createDevice({ deviceId: id, device: { labels, kind: { case: "coffeeMachine", value: {} } } });
const brightness = (n: number) => ({ kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: n } } } });
const powerOff = { kind: { case: "coffeeMachine" as const, value: { action: { case: "setPower" as const, value: false } } } };
const runsOf = async (id: string) => (await rules().listRuleRuns({ parent: `rules/${id}`, pageSize: 100 })).runs;

/** The BadRequest field violations of a failed call, as { field: description }. */
async function violations(p: Promise<unknown>): Promise<Record<string, string>> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(Code.InvalidArgument);
  return Object.fromEntries((err as ConnectError).findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => [v.field, v.description])));
}

describe("rules through the API", () => {
  it("a selector rule creates one task per matching device, and its run shows their outcomes", async () => {
    await led("sel-kitchen-1", { room: "kitchen" });
    await led("sel-kitchen-2", { room: "kitchen", floor: "1" });
    await led("sel-office", { room: "office" });
    await coffee("sel-kitchen-coffee", { room: "kitchen" }); // another kind: not selected
    const { device } = await ledSim(s, "sel-kitchen-1"); // online; sel-kitchen-2 stays offline
    try {
      const at = new Date(Date.now() + 1500);
      const rule = await rules().createRule({
        ruleId: "kitchen-dim",
        rule: {
          displayName: "Dim the kitchen",
          trigger: { case: "oneShotTime", value: timestampFromDate(at) },
          target: { case: "selector", value: { kind: ProductKind.LED, labels: { room: "kitchen" } } },
          command: brightness(20),
          taskTtl: { seconds: 600n },
        },
      });
      expect(rule.name).toBe("rules/kitchen-dim");
      expect(timestampDate(rule.nextFireTime!).getTime()).toBe(at.getTime());
      const run = await eventually(
        async () => (await runsOf("kitchen-dim")).find((r) => r.targets.some((t) => t.taskState === TaskState.SUCCEEDED)),
        10_000,
        "the run with a succeeded task",
      );
      expect(run.state).toBe(RunState.FIRED);
      expect(timestampDate(run.occurrenceTime!).getTime()).toBe(at.getTime());
      expect(run.targets.map((t) => t.device).sort()).toEqual(["devices/sel-kitchen-1", "devices/sel-kitchen-2"]);
      const byDevice = Object.fromEntries(run.targets.map((t) => [t.device, t]));
      expect(byDevice["devices/sel-kitchen-1"]!.taskState).toBe(TaskState.SUCCEEDED);
      expect(byDevice["devices/sel-kitchen-2"]!.taskState).toBe(TaskState.QUEUED);
      const queued = await tasks().getTask({ name: byDevice["devices/sel-kitchen-2"]!.task });
      expect(queued.requestId).toMatch(/^rule:kitchen-dim:[0-9a-f]{8}:/);
      expect(queued.command?.kind.case).toBe("led");
      expect((await tasks().listTasks({ parent: "devices/sel-office" })).tasks).toHaveLength(0);
      expect((await tasks().listTasks({ parent: "devices/sel-kitchen-coffee" })).tasks).toHaveLength(0);
      // A one-shot rule is done: no next fire time, and it never fires again.
      const after = await rules().getRule({ name: "rules/kitchen-dim" });
      expect(after.nextFireTime).toBeUndefined();
      expect(after.lastFireTime).toBeDefined();
      expect(await runsOf("kitchen-dim")).toHaveLength(1);
    } finally {
      await device.close();
    }
  });

  it("previews fire times in the rule's time zone", async () => {
    await led("preview-led");
    await rules().createRule({
      ruleId: "weekday-mornings",
      rule: {
        trigger: { case: "cron", value: { expression: "0 30 7 * * 1-5", timeZone: "Europe/Paris" } },
        target: { case: "device", value: "devices/preview-led" },
        command: brightness(80),
      },
    });
    const res = await rules().previewRule({ name: "rules/weekday-mornings", count: 7, startTime: timestampFromDate(new Date("2025-03-27T00:00:00Z")) });
    expect(res.timeZone).toBe("Europe/Paris");
    expect(res.fireTimes.map((t) => timestampDate(t).toISOString())).toEqual([
      "2025-03-27T06:30:00.000Z", // Thu, CET
      "2025-03-28T06:30:00.000Z", // Fri
      "2025-03-31T05:30:00.000Z", // Mon, CEST after the weekend's change
      "2025-04-01T05:30:00.000Z",
      "2025-04-02T05:30:00.000Z",
      "2025-04-03T05:30:00.000Z",
      "2025-04-04T05:30:00.000Z",
    ]);
    // A rule not yet created, read from its trigger alone.
    const inline = await rules().previewRule({
      rule: { trigger: { case: "cron", value: { expression: "0 0 12 1 * *", timeZone: "UTC" } } },
      count: 2,
      startTime: timestampFromDate(new Date("2025-01-15T00:00:00Z")),
    });
    expect(inline.fireTimes.map((t) => timestampDate(t).toISOString())).toEqual(["2025-02-01T12:00:00.000Z", "2025-03-01T12:00:00.000Z"]);
    expect(await violations(rules().previewRule({ name: "rules/weekday-mornings", count: 101 }))).toEqual({ count: "must be between 1 and 100" });
  });

  it("pause stops a rule; resume continues from now without catching up", async () => {
    await led("pause-led", {});
    await rules().createRule({
      ruleId: "every-second",
      rule: {
        trigger: { case: "cron", value: { expression: "* * * * * *", timeZone: "UTC" } },
        target: { case: "device", value: "devices/pause-led" },
        command: brightness(5),
        taskTtl: { seconds: 60n },
      },
    });
    await eventually(async () => (await runsOf("every-second")).length >= 2, 5000, "two runs");
    const paused = await rules().pauseRule({ name: "rules/every-second" });
    expect(paused.paused).toBe(true);
    await new Promise((r) => setTimeout(r, 300)); // a firing in flight when the pause committed
    const before = (await runsOf("every-second")).length;
    await new Promise((r) => setTimeout(r, 2200));
    expect((await runsOf("every-second")).length).toBe(before);
    expect((await rules().pauseRule({ name: "rules/every-second" })).paused).toBe(true); // idempotent
    const resumed = await rules().resumeRule({ name: "rules/every-second" });
    expect(resumed.paused).toBe(false);
    expect(timestampDate(resumed.nextFireTime!).getTime()).toBeGreaterThan(Date.now() - 1000);
    await eventually(async () => (await runsOf("every-second")).length >= before + 2, 5000, "runs after resume");
    const all = await runsOf("every-second");
    expect(all.every((r) => r.state === RunState.FIRED)).toBe(true); // nothing SKIPPED for the pause
    // Consecutive run occurrences are one second apart except across the pause.
    const gaps = all
      .map((r) => timestampDate(r.occurrenceTime!).getTime())
      .reverse()
      .slice(1)
      .map((t, i, a) => t - (i === 0 ? timestampDate(all.at(-1)!.occurrenceTime!).getTime() : a[i - 1]!));
    expect(gaps.filter((g) => g > 1000)).toHaveLength(1);
    await rules().deleteRule({ name: "rules/every-second" });
  });

  it("an event rule fires on a simulated machine's reported state, once, and switches it off", async () => {
    await coffee("event-coffee");
    const { device, sim } = await coffeeSim(s, "event-coffee", { brewMs: 300, waterPercent: 40 });
    try {
      await rules().createRule({
        ruleId: "low-water-off",
        rule: {
          trigger: { case: "eventTrigger", value: { metric: "water_level_percent", comparison: Comparison.LT, threshold: 20 } },
          target: { case: "device", value: "devices/event-coffee" },
          command: powerOff,
        },
      });
      // A large latte takes 25 %: 40 → 15, reported step by step as it brews.
      await tasks().createTask({
        parent: "devices/event-coffee",
        task: { command: { kind: { case: "coffeeMachine", value: { action: { case: "brew", value: { recipe: 4, size: 3 } } } } } },
        waitFor: 2,
      });
      await eventually(async () => !sim.power, 8000, "the machine switched off by the rule");
      const [run, ...more] = await runsOf("low-water-off");
      expect(more).toHaveLength(0); // the cooldown holds while the level stays low
      expect(run!.triggerDevice).toBe("devices/event-coffee");
      expect(run!.triggerValue).toBeLessThan(20);
      await eventually(async () => (await runsOf("low-water-off"))[0]!.targets[0]!.taskState === TaskState.SUCCEEDED, 5000, "the power-off task succeeded");
    } finally {
      await device.close();
    }
  });

  it("an event rule on telemetry waits for the condition to hold, then keeps its cooldown", async () => {
    await coffee("tele-coffee");
    await rules().createRule({
      ruleId: "hot-boiler",
      rule: {
        trigger: {
          case: "eventTrigger",
          value: {
            metric: "boiler_temperature_celsius",
            comparison: Comparison.GT,
            threshold: 110,
            forDuration: { seconds: 15n },
            cooldown: { seconds: 120n },
          },
        },
        target: { case: "selector", value: { kind: ProductKind.COFFEE_MACHINE, labels: { tele: "yes" } } },
        command: powerOff,
      },
    });
    await devices().updateDevice({ device: { name: "devices/tele-coffee", labels: { tele: "yes" } }, updateMask: { paths: ["labels"] } });
    // The selector's members are re-read when rules change and every few seconds: nudge it.
    await rules().updateRule({ rule: { name: "rules/hot-boiler", displayName: "Boiler too hot" }, updateMask: { paths: ["display_name"] } });
    const dev = await rawDevice(s, "tele-coffee");
    try {
      const base = Date.now() - 10 * 60_000;
      const sample = (sec: number, value: number) => ({ metric: "boiler_temperature_celsius", value, time: timestampFromDate(new Date(base + sec * 1000)) });
      // Hot at 0 s, cools at 5 s, hot again from 10 s: held 15 s at 25 s. Within the cooldown at 60 s; again at 150 s.
      await dev.send({
        case: "telemetry",
        value: { samples: [sample(0, 115), sample(5, 100), sample(10, 112), sample(20, 113), sample(25, 114), sample(60, 120)] },
      });
      await eventually(async () => (await runsOf("hot-boiler")).length === 1, 8000, "one run");
      await dev.send({ case: "telemetry", value: { samples: [sample(150, 118)] } });
      const runs = await eventually(
        async () => {
          const r = await runsOf("hot-boiler");
          return r.length === 2 && r;
        },
        8000,
        "a second run after the cooldown",
      );
      expect(runs.map((r) => (timestampDate(r.occurrenceTime!).getTime() - base) / 1000)).toEqual([150, 25]);
      expect(runs.map((r) => r.triggerValue)).toEqual([118, 114]);
    } finally {
      await dev.close();
    }
  });

  it("refuses bad input, naming the field", async () => {
    await led("bad-led");
    const base = { target: { case: "device" as const, value: "devices/bad-led" }, command: brightness(50) };
    const cron = (expression: string, timeZone = "Europe/Paris") => ({ case: "cron" as const, value: { expression, timeZone } });
    expect(await violations(rules().createRule({ rule: { ...base, trigger: cron("0 30 25 * * *") } }))).toEqual({
      "rule.cron.expression": expect.stringMatching(/^invalid cron expression: CronPattern: .*hour.*25/i),
    });
    expect(await violations(rules().createRule({ rule: { ...base, trigger: cron("0 30 7 * * *", "Europe/Atlantis") } }))).toEqual({
      "rule.cron.time_zone": expect.stringContaining('unknown time zone "Europe/Atlantis"'),
    });
    expect(await violations(rules().createRule({ rule: { ...base, trigger: cron("0 30 7 * * *"), command: powerOff } }))).toEqual({
      "rule.command": "devices/bad-led is a led; a coffee_machine command does not apply to it",
    });
    expect(await violations(rules().createRule({ rule: { ...base, trigger: cron("0 30 7 * * *"), command: brightness(300) } }))).toEqual({
      "rule.command.led.set_brightness": "must be a percentage between 0 and 100",
    });
    expect(
      await violations(
        rules().createRule({
          rule: { trigger: cron("0 30 7 * * *"), target: { case: "selector", value: { kind: ProductKind.LED, labels: {} } }, command: brightness(5) },
        }),
      ),
    ).toEqual({
      "rule.selector.labels": expect.stringContaining("at least one label"),
    });
    expect(
      await violations(rules().createRule({ rule: { ...base, target: { case: "device", value: "devices/no-such" }, trigger: cron("0 30 7 * * *") } })),
    ).toEqual({
      "rule.device": "devices/no-such does not exist",
    });
    expect(
      await violations(rules().createRule({ rule: { ...base, trigger: { case: "oneShotTime", value: timestampFromDate(new Date(Date.now() - 1000)) } } })),
    ).toEqual({
      "rule.one_shot_time": "must be in the future",
    });
    expect(await violations(rules().createRule({ ruleId: "Bad_Id", rule: { ...base, trigger: cron("0 30 7 * * *") } }))).toHaveProperty("rule_id");
    const notFound = await rules()
      .getRule({ name: "rules/nope" })
      .catch((e: ConnectError) => e);
    expect((notFound as ConnectError).code).toBe(Code.NotFound);
    // An event rule on a metric the device's product does not have could never fire.
    expect(
      await violations(
        rules().createRule({
          rule: { ...base, trigger: { case: "eventTrigger", value: { metric: "water_level_percent", comparison: Comparison.LT, threshold: 10 } } },
        }),
      ),
    ).toEqual({
      "rule.event_trigger.metric": expect.stringMatching(
        /^"water_level_percent" is not a metric of LEDs \(devices\/bad-led is one\): use one of power_w, temperature_celsius, signal_strength, rssi, /,
      ),
    });
    await rules().createRule({
      ruleId: "event-preview",
      rule: { ...base, trigger: { case: "eventTrigger", value: { metric: "temperature_celsius", comparison: Comparison.GT, threshold: 1 } } },
    });
    const pre = await rules()
      .previewRule({ name: "rules/event-preview" })
      .catch((e: ConnectError) => e);
    expect((pre as ConnectError).code).toBe(Code.FailedPrecondition);
  });

  it("updates with a field mask and an etag, lists and deletes", async () => {
    await led("upd-led");
    const created = await rules().createRule({
      ruleId: "upd",
      rule: {
        trigger: { case: "cron", value: { expression: "0 0 8 * * *", timeZone: "UTC" } },
        target: { case: "device", value: "devices/upd-led" },
        command: brightness(10),
      },
    });
    const updated = await rules().updateRule({
      rule: { name: "rules/upd", etag: created.etag, trigger: { case: "cron", value: { expression: "0 0 9 * * *", timeZone: "" } } },
      updateMask: { paths: ["cron.expression"] },
    });
    expect(updated.trigger.case === "cron" && updated.trigger.value).toMatchObject({ expression: "0 0 9 * * *", timeZone: "UTC" });
    expect(timestampDate(updated.nextFireTime!).getUTCHours()).toBe(9);
    expect(updated.etag).not.toBe(created.etag);
    const stale = await rules()
      .updateRule({ rule: { name: "rules/upd", etag: created.etag, displayName: "x" }, updateMask: { paths: ["display_name"] } })
      .catch((e: ConnectError) => e);
    expect((stale as ConnectError).code).toBe(Code.Aborted);
    expect(await violations(rules().updateRule({ rule: { name: "rules/upd" }, updateMask: { paths: ["next_fire_time"] } }))).toEqual({
      "update_mask.paths": '"next_fire_time": is output only',
    });
    const page1 = await rules().listRules({ pageSize: 2 });
    expect(page1.rules).toHaveLength(2);
    const page2 = await rules().listRules({ pageSize: 1000, pageToken: page1.nextPageToken });
    expect([...page1.rules, ...page2.rules].map((r) => r.name)).toContain("rules/upd");
    await rules().deleteRule({ name: "rules/upd" });
    await rules().deleteRule({ name: "rules/upd", allowMissing: true });
    expect(
      (
        (await rules()
          .getRule({ name: "rules/upd" })
          .catch((e: ConnectError) => e)) as ConnectError
      ).code,
    ).toBe(Code.NotFound);
  });

  it("the CLI creates, previews and lists rules", async () => {
    await led("cli-led", { room: "cli" });
    const lines: string[] = [];
    const all: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void (lines.push(a.join(" ")), all.push(a.join(" "))));
    const flags = ["--address", s.baseUrl, "--certs", `${s.dir}/certs`];
    try {
      await rulesCommand([
        "create",
        "cli-morning",
        "--cron",
        "0 30 7 * * 1-5",
        "--tz",
        "Europe/Paris",
        "--selector",
        "kind=led,room=cli",
        "--command",
        "brightness 80",
        ...flags,
      ]);
      await rulesCommand(["create", "cli-device", "--at", "+1h", "--device", "cli-led", "--command", "color #ff8800", ...flags]);
      await rulesCommand(["preview", "cli-morning", "--count", "3", ...flags]);
      await rulesCommand(["create", "cli-paused", "--cron", "0 0 * * * *", "--device", "cli-led", "--command", "power on", ...flags]);
      await rulesCommand(["pause", "cli-paused", ...flags]);
      await rulesCommand(["create", "cli-soon", "--at", "+1s", "--device", "cli-led", "--command", "power off", ...flags]);
      await eventually(async () => (await rules().getRule({ name: "rules/cli-soon" })).lastFireTime !== undefined, 10_000, "the one-shot rule fired");
      lines.length = 0;
      await rulesCommand(["list", ...flags]);
      const list = lines.join("\n");
      // A paused rule shows no next fire time (resume reschedules from then); a one-shot that fired is done.
      expect(list).toMatch(/^cli-paused\s+cron "0 0 \* \* \* \*" UTC\s+devices\/cli-led\s+power on\s+-\s+yes$/m);
      expect(list).toMatch(/^cli-soon\s+at \S+\s+devices\/cli-led\s+power off\s+done\s+-$/m);
      expect(list).toMatch(/^cli-device\s+at \S+\s+devices\/cli-led\s+color #\S+\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+-$/m);
      await rulesCommand(["runs", "cli-morning", ...flags]);
      lines.length = 0;
      await rulesCommand(["delete", "cli-paused", "--allow-missing", ...flags]);
      await rulesCommand(["delete", "cli-paused", "--allow-missing", ...flags]);
      expect(lines).toEqual(["deleted rules/cli-paused", "rules/cli-paused not found, nothing to delete"]);
    } finally {
      spy.mockRestore();
    }
    const out = all.join("\n");
    expect(out).toContain('cron "0 30 7 * * 1-5" Europe/Paris');
    expect(out).toMatch(/LOCAL \(Europe\/Paris\)[\s\S]*(Mon|Tue|Wed|Thu|Fri) \d{4}-\d\d-\d\d 07:30:00 (CET|CEST|GMT\+1|GMT\+2)/);
    expect(out).toContain("led room=cli");
    expect(out).toMatch(/cli-device\s.*color #ff8800/); // the command in the words it was typed in
  });
});
