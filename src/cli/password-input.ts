/**
 * Reads a password without echo from a terminal, or the first line of stdin when piped
 * (`--password-stdin` style), so it never appears in argv, the shell history or `ps`.
 */
export async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let data = "";
    for await (const chunk of stdin) data += String(chunk);
    return data.split(/\r?\n/)[0] ?? "";
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding("utf8");
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = "";
      const onData = (s: string) => {
        for (const ch of s) {
          if (ch === "\r" || ch === "\n") {
            stdin.off("data", onData);
            process.stderr.write("\n");
            return resolve(value);
          }
          if (ch === "\u0003") {
            stdin.off("data", onData);
            return reject(new Error("canceled"));
          }
          if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

/** Injected by tests; the real CLI asks the terminal. */
export interface CliIo {
  readPassword(prompt: string): Promise<string>;
  /** Where sessions are stored. @default credentials.ts's file */
  credentialsFile?: string;
}

export const terminalIo: CliIo = { readPassword };
