import { parseArgs } from "node:util";

export const MCP_USAGE = `tether mcp [--address https://host:port] [--certs DIR]

  An MCP server on stdin/stdout for AI assistants (Claude Desktop, IDEs): tools and resources over
  Tether's API, acting with this CLI's credential ($TETHER_API_KEY, else the \`tether login\`
  session, else the admin certificate in --certs). Calls are audited with via "mcp" and limited
  to $TETHER_MCP_RATE_PER_MIN (default 120) a minute. Logs go to stderr.

Global: --address https://host:port, --certs DIR`;

/** `tether mcp`: the SDK and the tools load only here, not for `tether --help`. */
export async function mcpCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({ args: argv, allowPositionals: false, options: { address: { type: "string" }, certs: { type: "string" } } });
  const { serveMcpOverStdio } = await import("../mcp/stdio.js");
  await serveMcpOverStdio({ address: v.address, certsDir: v.certs });
}
