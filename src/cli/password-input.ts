/** Piped input, read to its end once and handed out a line per question. */
const pipedLines = new WeakMap<NodeJS.ReadableStream, Promise<string[]>>();

/**
 * Reads a password without echo from a terminal, or the next line of stdin when piped
 * (`--password-stdin` style), so it never appears in argv, the shell history or `ps`. A command
 * that asks twice (`set-password --current`: the current one, then the new one) takes one line
 * each; reading all of stdin for the first used to leave the second empty, which removed the
 * password instead of changing it.
 */
export async function readPassword(prompt: string, stdin: NodeJS.ReadStream | NodeJS.ReadableStream = process.stdin): Promise<string> {
  if (!("isTTY" in stdin && stdin.isTTY)) {
    let lines = pipedLines.get(stdin);
    if (!lines) {
      lines = (async () => {
        let data = "";
        for await (const chunk of stdin) data += String(chunk);
        return data.split(/\r?\n/);
      })();
      pipedLines.set(stdin, lines);
    }
    return (await lines).shift() ?? "";
  }
  const tty = stdin as NodeJS.ReadStream;
  process.stderr.write(prompt);
  tty.setRawMode(true);
  tty.resume();
  tty.setEncoding("utf8");
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = "";
      const onData = (s: string) => {
        for (const ch of s) {
          if (ch === "\r" || ch === "\n") {
            tty.off("data", onData);
            process.stderr.write("\n");
            return resolve(value);
          }
          if (ch === "\u0003") {
            tty.off("data", onData);
            return reject(new Error("canceled"));
          }
          if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
          else value += ch;
        }
      };
      tty.on("data", onData);
    });
  } finally {
    tty.setRawMode(false);
    tty.pause();
  }
}

/** Injected by tests; the real CLI asks the terminal. */
export interface CliIo {
  readPassword(prompt: string): Promise<string>;
  /** Where sessions are stored. @default credentials.ts's file */
  credentialsFile?: string;
}

export const terminalIo: CliIo = { readPassword: (prompt) => readPassword(prompt) };
