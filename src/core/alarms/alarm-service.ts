import { AlarmSeverity, AlarmSeveritySchema, Alarm_State } from "../../../gen/tether/v1/alarm_pb.js";
import type {
  AcknowledgeAlarmRequest,
  AlarmFilter,
  CountAlarmsRequest,
  CountAlarmsResponse,
  ListAlarmsRequest,
  ListAlarmsResponse,
} from "../../../gen/tether/v1/alarm_service_pb.js";
import { type Access, creatorOf } from "../access/access.js";
import { createDeviceRights } from "../access/device-rights.js";
import type { Clock } from "../clock.js";
import { parseDeviceName, truncate } from "../devices/device-name.js";
import { AbortedError, FailedPreconditionError, InvalidArgumentError, NotFoundError, Violations } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { AlarmQuery, AlarmRepository } from "../ports/alarm-repository.js";
import type { ChangeFeed, DeviceRepository } from "../ports/index.js";
import { parseRuleName } from "../rules/rule-name.js";
import { watchFeed } from "../watch-feed.js";
import { type AlarmChange, type AlarmRecord, alarmEtag, alarmName, toAlarmProto } from "./alarm-record.js";

export interface AlarmServiceDeps {
  alarms: AlarmRepository;
  devices: DeviceRepository;
  clock: Clock;
  /** Every committed alarm change, from every replica. */
  alarmFeed: ChangeFeed<AlarmChange>;
  /** Called with a change this service committed (an acknowledgement): publish it. */
  onChanges?: (changes: AlarmChange[]) => void;
}

export type AlarmService = ReturnType<typeof createAlarmService>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_COMMENT = 1024;

/** Parses `alarms/{alarm}`; InvalidArgument naming `field` otherwise. */
export function parseAlarmName(name: string, field = "name"): string {
  const m = /^alarms\/([^/]+)$/.exec(name);
  if (!m || !UUID.test(m[1]!)) {
    throw InvalidArgumentError.field(
      field,
      name === "" ? "is required, e.g. alarms/{uuid}" : `"${truncate(name)}" is not an alarm name: expected alarms/{uuid}`,
    );
  }
  return m[1]!;
}

/** An AlarmFilter as a query; bad fields named under `field`. */
export function parseAlarmFilter(f: AlarmFilter | undefined, field: string, v: Violations): AlarmQuery {
  const q: AlarmQuery = {};
  if (!f) return q;
  const collect = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      for (const x of err.violations) v.add(x.field, x.description);
    }
  };
  if (f.device !== "") collect(() => (q.deviceId = parseDeviceName(f.device, `${field}.device`)));
  if (f.rule !== "") collect(() => (q.ruleId = parseRuleName(f.rule, `${field}.rule`)));
  if (f.severity !== AlarmSeverity.UNSPECIFIED) {
    if (AlarmSeveritySchema.values.some((x) => x.number === f.severity)) q.severity = f.severity;
    else v.add(`${field}.severity`, `unknown AlarmSeverity ${f.severity}`);
  }
  if (f.state === Alarm_State.ACTIVE) q.state = "ACTIVE";
  else if (f.state === Alarm_State.CLEARED) q.state = "CLEARED";
  else if (f.state !== Alarm_State.UNSPECIFIED) v.add(`${field}.state`, `unknown Alarm.State ${f.state}`);
  if (f.acknowledged !== undefined) q.acknowledged = f.acknowledged;
  return q;
}

function matches(q: AlarmQuery, a: AlarmRecord): boolean {
  return (
    (q.deviceId === undefined || a.deviceId === q.deviceId) &&
    (q.ruleId === undefined || a.ruleId === q.ruleId) &&
    (q.severity === undefined || a.severity === q.severity) &&
    (q.state === undefined || a.state === q.state) &&
    (q.acknowledged === undefined || a.acknowledged === q.acknowledged)
  );
}

/** The AlarmService use cases. Rights follow the device's: viewer reads, operator acknowledges. */
export function createAlarmService({ alarms, devices, clock, alarmFeed, onChanges }: AlarmServiceDeps) {
  const rights = createDeviceRights(devices);

  async function load(access: Access, name: string, field = "name"): Promise<AlarmRecord> {
    const id = parseAlarmName(name, field);
    const a = await alarms.get(id);
    if (!a) throw new NotFoundError(alarmName(id));
    await rights.require(access, "device.read", a.deviceId, alarmName(id));
    return a;
  }

  function query(f: AlarmFilter | undefined): AlarmQuery {
    const v = new Violations();
    const q = parseAlarmFilter(f, "filter", v);
    v.throwIfAny();
    return q;
  }

  return {
    async getAlarm(access: Access, name: string) {
      return toAlarmProto(await load(access, name));
    },

    async listAlarms(access: Access, req: ListAlarmsRequest): Promise<ListAlarmsResponse> {
      const limit = resolvePageSize(req.pageSize);
      const filter = query(req.filter);
      const tokenQuery = `alarms|${JSON.stringify(filter)}`;
      const key = decodePageToken(req.pageToken, tokenQuery);
      let before: { raiseTime: Date; id: string } | undefined;
      if (key !== undefined) {
        const [t, id] = key.split("|");
        before = { raiseTime: new Date(t!), id: id! };
      }
      const rows = await alarms.list({ filter, scope: access.scope(), before, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListAlarmsResponse",
        alarms: page.map(toAlarmProto),
        nextPageToken: rows.length > limit && last ? encodePageToken(`${last.raiseTime.toISOString()}|${last.id}`, tokenQuery) : "",
      };
    },

    async countAlarms(access: Access, req: CountAlarmsRequest): Promise<CountAlarmsResponse> {
      if (req.filter && req.filter.severity !== AlarmSeverity.UNSPECIFIED) {
        throw InvalidArgumentError.field("filter.severity", "must be unset: the counts are per severity");
      }
      const counts = await alarms.count({ filter: query(req.filter), scope: access.scope() });
      const severities = AlarmSeveritySchema.values.filter((x) => x.number !== AlarmSeverity.UNSPECIFIED).map((x) => x.number);
      const list = severities.map((severity) => ({
        $typeName: "tether.v1.CountAlarmsResponse.SeverityCount" as const,
        severity,
        count: BigInt(counts.get(severity) ?? 0),
      }));
      return { $typeName: "tether.v1.CountAlarmsResponse", counts: list, total: list.reduce((n, c) => n + c.count, 0n) };
    },

    async acknowledgeAlarm(access: Access, req: AcknowledgeAlarmRequest) {
      if (req.comment.length > MAX_COMMENT) throw InvalidArgumentError.field("comment", `must be at most ${MAX_COMMENT} characters`);
      const stored = await load(access, req.name);
      await rights.require(access, "alarm.acknowledge", stored.deviceId, alarmName(stored.id));
      const already = (a: AlarmRecord) =>
        new FailedPreconditionError(
          `${alarmName(a.id)} was already acknowledged by ${a.acknowledger ?? "someone"} at ${a.acknowledgeTime?.toISOString() ?? "?"}`,
        );
      if (stored.acknowledged) throw already(stored);
      if (req.etag !== "" && req.etag !== alarmEtag(stored))
        throw new AbortedError(`etag mismatch: ${alarmName(stored.id)} changed since it was read; re-read it and retry`);
      const change = await alarms.acknowledge(stored.id, {
        by: creatorOf(access),
        comment: req.comment,
        now: clock.now(),
        expectedRevision: req.etag !== "" ? stored.revision : undefined,
      });
      if (!change) {
        const now = await alarms.get(stored.id);
        if (now?.acknowledged) throw already(now);
        throw new AbortedError(`${alarmName(stored.id)} changed concurrently; re-read it and retry`);
      }
      onChanges?.([change]);
      return toAlarmProto(change.alarm);
    },

    /** Events from now on, on devices the caller may see as of each event. */
    async *watchAlarms(access: Access, filter: AlarmFilter | undefined, signal: AbortSignal, onOverflow?: () => void): AsyncGenerator<AlarmChange> {
      const q = query(filter);
      if (q.deviceId !== undefined) await rights.require(access, "device.read", q.deviceId);
      const gate = rights.gate(access);
      const allow = access.all ? undefined : (c: AlarmChange) => gate(c.alarm.deviceId);
      yield* watchFeed(alarmFeed, (c) => matches(q, c.alarm), undefined, signal, undefined, allow, onOverflow);
    },
  };
}
