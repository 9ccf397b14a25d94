import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { formatLogLine, resolveLogFormat, wantsColour } from "../../src/log-pretty.js";
import { createLogger } from "../../src/log.js";

/** A writable that keeps what was written, optionally pretending to be a terminal. */
function sink(isTTY: boolean) {
  const chunks: string[] = [];
  const out = new Writable({ write: (chunk, _enc, done) => void (chunks.push(String(chunk)), done()) }) as Writable & { isTTY?: boolean };
  if (isTTY) out.isTTY = true;
  return { out, text: () => chunks.join("") };
}

describe("log format", () => {
  it("auto is pretty on a terminal and JSON on anything else; json and pretty force it", () => {
    expect(resolveLogFormat("auto", { isTTY: true })).toBe("pretty");
    expect(resolveLogFormat("auto", {})).toBe("json");
    expect(resolveLogFormat("json", { isTTY: true })).toBe("json");
    expect(resolveLogFormat("pretty", {})).toBe("pretty");
    expect(wantsColour({ isTTY: true }, {})).toBe(true);
    expect(wantsColour({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(wantsColour({}, {})).toBe(false);
  });

  it("LOG_FORMAT is read and checked by loadConfig", () => {
    expect(loadConfig({}).logFormat).toBe("auto");
    expect(loadConfig({ LOG_FORMAT: "json" }).logFormat).toBe("json");
    expect(() => loadConfig({ LOG_FORMAT: "fancy" })).toThrow(/LOG_FORMAT=fancy: expected one of auto, json, pretty/);
  });

  it("renders time, level, message, then the fields as key=value", () => {
    const line = JSON.stringify({
      level: 40,
      time: "2026-12-04T19:57:04.123Z",
      service: "tether",
      requestId: "r-1",
      method: "CreateTask",
      ms: 2500,
      note: "two words",
      msg: "slow call",
    });
    expect(formatLogLine(line, false)).toBe('19:57:04.123 WARN  slow call requestId=r-1 method=CreateTask ms=2500 note="two words"\n');
  });

  it("colours the level, shows an error's message in place and its stack below", () => {
    const line = JSON.stringify({
      level: 50,
      time: "2026-12-04T19:57:04.123Z",
      err: { type: "Error", message: "boom", stack: "Error: boom\n    at f (a.ts:1:1)" },
      msg: "call failed",
    });
    const text = formatLogLine(line, true);
    expect(text).toContain("\x1b[31mERROR\x1b[0m");
    const plain = formatLogLine(line, false);
    expect(plain).toBe("19:57:04.123 ERROR call failed err=boom\n    Error: boom\n    at f (a.ts:1:1)\n");
  });

  it("passes a line that is not JSON through unchanged", () => {
    expect(formatLogLine("not json", false)).toBe("not json\n");
  });

  it("createLogger writes pretty lines to a terminal and JSON to a pipe, redacting both", () => {
    const tty = sink(true);
    createLogger("info", tty.out).info({ password: "hunter2", port: 8443 }, "tether ready");
    expect(tty.text().replace(/\x1b\[[0-9;]*m/g, "")).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}tether ready password=\[redacted\] port=8443\n$/);
    const pipe = sink(false);
    createLogger("info", pipe.out).info({ password: "hunter2" }, "tether ready");
    expect(JSON.parse(pipe.text())).toMatchObject({ msg: "tether ready", password: "[redacted]", service: "tether" });
    const forced = sink(false);
    createLogger("info", forced.out, "pretty").info("hello");
    expect(forced.text()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}hello\n$/);
  });
});
