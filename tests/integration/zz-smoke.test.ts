import { it, expect } from "vitest";
import { inProcessSql, migratedPglite } from "../helpers/pglite-in-process.js";
it("works", { timeout: 20000 }, async () => {
  const db = await migratedPglite();
  const sql = inProcessSql(db);
  const r = await sql`select count(*)::int as n from devices`;
  console.log("q1");
  expect(r[0]!.n).toBe(0);
  const r2 = await sql`select ${"x"}::text as v, ${5}::int as n`;
  console.log("q2");
  expect(r2[0]).toEqual({ v: "x", n: 5 });
  await sql.end();
  console.log("end");
  await db.close();
});
