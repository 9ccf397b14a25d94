import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { readPassword } from "../../src/cli/password-input.js";

describe("passwords piped to the CLI", () => {
  it("gives each question its own line (set-password --current asks two)", async () => {
    const stdin = Readable.from(["old-secret\nnew-se", "cret\r\n"]);
    expect(await readPassword("current password: ", stdin)).toBe("old-secret");
    // Reading all of stdin for the first question used to leave this one empty: the password was removed.
    expect(await readPassword("new password: ", stdin)).toBe("new-secret");
    expect(await readPassword("one more: ", stdin)).toBe("");
  });

  it("reads a single line without a newline", async () => {
    expect(await readPassword("password: ", Readable.from(["only"]))).toBe("only");
  });
});
