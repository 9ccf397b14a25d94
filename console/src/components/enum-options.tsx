import type { DescEnum } from "@bufbuild/protobuf";
import { enumOptions } from "../format.js";

/** The `<option>`s of a protobuf enum, labelled as `enumOptions` names them (UNSPECIFIED left out). */
export function EnumOptions({ of }: { of: DescEnum }) {
  return (
    <>
      {enumOptions(of).map(([v, l]) => (
        <option key={v} value={v}>
          {l}
        </option>
      ))}
    </>
  );
}
