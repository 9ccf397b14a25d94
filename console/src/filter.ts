/**
 * The ListDevices filter for the fleet view's inputs: a kind (a product's `kindName`), labels written as
 * `room=kitchen, floor` (a bare key means "has the label"), and `true`/`false` for online.
 * Values are quoted as JSON strings, which is the filter grammar's string syntax.
 */
export function buildFilter(kind: string, labels: string, online: string): string {
  const terms: string[] = [];
  if (kind) terms.push(`kind = ${JSON.stringify(kind)}`);
  for (const part of labels
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq < 0) terms.push(`labels.${part}:*`);
    else terms.push(`labels.${part.slice(0, eq).trim()} = ${JSON.stringify(part.slice(eq + 1).trim())}`);
  }
  if (online) terms.push(`online = ${online}`);
  return terms.join(" AND ");
}
