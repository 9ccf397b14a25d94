import { parseArgs } from "node:util";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { anonymousClient, resolveAddress } from "./client.js";
import { credentialsFile, loadSession, saveSession } from "./credentials.js";
import { type CliIo, terminalIo } from "./password-input.js";

export const LOGIN_USAGE = `tether login [--user NAME] [--address https://host:port] [--certs DIR]
  asks for the password (or reads it from stdin when piped) and stores the tokens in
  $TETHER_CONFIG_DIR or ~/.config/tether/credentials.json (mode 0600); later commands use them
  instead of the admin certificate
tether logout [--address ...]   ends the session and forgets the tokens
tether whoami [--address ...]   the signed-in user, if any`;

/** `tether login`, `tether logout`, `tether whoami`. */
export async function loginCommand(command: "login" | "logout" | "whoami", argv: string[], io: CliIo = terminalIo): Promise<void> {
  const { values: v } = parseArgs({ args: argv, options: { user: { type: "string" }, address: { type: "string" }, certs: { type: "string" } } });
  const opts = { address: v.address, certsDir: v.certs };
  const address = resolveAddress(opts);
  const file = io.credentialsFile ?? credentialsFile();
  if (command === "whoami") {
    const s = loadSession(address, file);
    console.log(s ? `${s.user} at ${address} (token session)` : `no session at ${address}: the client certificate is used`);
    return;
  }
  if (command === "logout") {
    const s = loadSession(address, file);
    if (s)
      await anonymousClient(AuthService, opts)
        .logout({ refreshToken: s.refreshToken })
        .catch(() => {});
    saveSession(address, undefined, file);
    console.log(s ? `signed out ${s.user} at ${address}` : `no session at ${address}`);
    return;
  }
  const user = v.user ?? process.env.USER ?? "";
  if (!user) throw new Error("tether login: --user is required");
  const password = await io.readPassword(`password for ${user} at ${address}: `);
  const res = await anonymousClient(AuthService, opts).login({ user, password });
  saveSession(
    address,
    {
      user,
      accessToken: res.accessToken,
      accessExpireTime: timestampDate(res.accessTokenExpireTime!).toISOString(),
      refreshToken: res.refreshToken,
      refreshExpireTime: timestampDate(res.refreshTokenExpireTime!).toISOString(),
    },
    file,
  );
  console.log(`signed in as ${user} at ${address}; tokens stored in ${file}`);
}
