import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withTransaction } from "../../src/store/transaction.js";
import { freshDatabase } from "../helpers/postgres.js";

let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  db = await freshDatabase("tether_tx");
});
afterAll(async () => {
  await db?.drop();
});

describe("withTransaction", () => {
  it("keeps transactions isolated and rolls back on a one-connection pool under a flood of queries", async () => {
    // The embedded mode's shape: one connection, many queries queued on it.
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await sql`CREATE TABLE t (id int PRIMARY KEY, tx bigint NOT NULL)`;
      const plain = Array.from({ length: 300 }, (_, i) => sql`SELECT ${i}::int AS i, txid_current() AS tx`);
      const txs = Array.from({ length: 60 }, (_, i) =>
        withTransaction(sql, async (tx) => {
          const [a] = await tx`SELECT txid_current() AS tx`;
          await tx`INSERT INTO t (id, tx) VALUES (${i}, ${a!.tx})`;
          const [b] = await tx`SELECT txid_current() AS tx`;
          return a!.tx === b!.tx;
        }),
      );
      const [plainRows, same] = await Promise.all([Promise.all(plain), Promise.all(txs)]);
      expect(same.every(Boolean)).toBe(true); // every statement of a transaction ran inside it
      const txIds = new Set((await sql`SELECT tx FROM t`).map((r) => String(r.tx)));
      expect(txIds.size).toBe(60);
      // No plain query ran inside someone's transaction.
      expect(plainRows.filter((r) => txIds.has(String(r[0]!.tx)))).toHaveLength(0);
      // A failing body rolls back and frees the connection.
      await expect(withTransaction(sql, async (tx) => tx`INSERT INTO t (id, tx) VALUES (1, 0)`)).rejects.toMatchObject({ code: "23505" });
      expect((await sql`SELECT count(*)::int AS n FROM t`)[0]!.n).toBe(60);
    } finally {
      await sql.end();
    }
  });
});
