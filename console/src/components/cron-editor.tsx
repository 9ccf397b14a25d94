import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useEffect, useState } from "react";
import { api } from "../api.js";
import { fieldsUnder, type ReadableError, readable } from "../errors.js";
import { ErrorBanner, FieldError } from "./error-banner.js";

const PRESETS: Array<[string, string]> = [
  ["every minute", "0 * * * * *"],
  ["every 10 seconds", "*/10 * * * * *"],
  ["every hour", "0 0 * * * *"],
  ["weekdays 07:30", "0 30 7 * * 1-5"],
  ["every day at midnight", "0 0 0 * * *"],
  ["Mondays 09:00", "0 0 9 * * 1"],
];

const ZONES: string[] = (() => {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["UTC"];
  }
})();

export const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/**
 * A cron expression and time zone, with the next fire times computed by the server
 * (`PreviewRule` on the unsaved rule: the same croner code and DST handling that will fire it), so
 * what the page shows is what will happen. Reasons for a bad expression appear under the input.
 */
export function CronEditor({
  expression,
  timeZone,
  fields,
  onChange,
}: {
  expression: string;
  timeZone: string;
  fields: Record<string, string>;
  onChange(expression: string, timeZone: string): void;
}) {
  const [preview, setPreview] = useState<{ times: Date[]; zone: string }>();
  const [error, setError] = useState<ReadableError>();
  useEffect(() => {
    const ac = new AbortController();
    const t = setTimeout(async () => {
      try {
        const res = await api.rules.previewRule({ rule: { trigger: { case: "cron", value: { expression, timeZone } } }, count: 5 }, { signal: ac.signal });
        setPreview({ times: res.fireTimes.map((x) => timestampDate(x)), zone: res.timeZone });
        setError(undefined);
      } catch (err) {
        if (ac.signal.aborted) return;
        setPreview(undefined);
        setError(readable(err));
      }
    }, 250);
    return () => {
      ac.abort();
      clearTimeout(t);
    };
  }, [expression, timeZone]);
  const exprErrors = [...fieldsUnder(fields, "rule.cron.expression"), ...(error ? fieldsUnder(error.fields, "rule.cron.expression") : [])];
  const zoneErrors = [...fieldsUnder(fields, "rule.cron.time_zone"), ...(error ? fieldsUnder(error.fields, "rule.cron.time_zone") : [])];
  const fmt = (d: Date, zone: string) =>
    d.toLocaleString(undefined, {
      timeZone: zone,
      weekday: "short",
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      timeZoneName: "short",
    });
  return (
    <div className="cron-editor">
      <label>
        Cron expression <span className="muted">(seconds minutes hours day-of-month month day-of-week)</span>
        <input name="cron" className="mono" value={expression} onChange={(e) => onChange(e.target.value, timeZone)} spellCheck={false} />
        <FieldError messages={exprErrors} />
      </label>
      <div className="presets">
        {PRESETS.map(([l, x]) => (
          <button type="button" className="small" key={x} onClick={() => onChange(x, timeZone)}>
            {l}
          </button>
        ))}
      </div>
      <label>
        Time zone
        <input name="time-zone" list="time-zones" value={timeZone} onChange={(e) => onChange(expression, e.target.value)} />
        <datalist id="time-zones">
          {ZONES.map((z) => (
            <option key={z} value={z} />
          ))}
        </datalist>
        <FieldError messages={zoneErrors} />
      </label>
      {error && Object.keys(error.fields).length === 0 && <ErrorBanner error={error} />}
      {preview && (
        <div className="preview" data-testid="cron-preview">
          <div className="muted">Next fire times</div>
          <ol>
            {preview.times.map((t) => (
              <li key={t.getTime()}>
                {fmt(t, preview.zone)}
                {preview.zone !== browserZone && <span className="muted"> · {fmt(t, browserZone)}</span>}
              </li>
            ))}
          </ol>
        </div>
      )}
    </div>
  );
}
