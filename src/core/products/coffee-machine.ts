import {
  CoffeeMachineDesiredSchema,
  CoffeeMachineReportedSchema,
  CoffeeMachineSchema,
} from "../../../gen/tether/v1/coffee_machine_pb.js";
import { type Product, ProductKind } from "./product.js";

/** Coffee machines: an owner sets power; status, levels and brews are reported by the machine. */
export const coffeeMachineProduct: Product = {
  case: "coffeeMachine",
  kindName: "coffee_machine",
  productKind: ProductKind.COFFEE_MACHINE,
  schema: CoffeeMachineSchema,
  desiredSchema: CoffeeMachineDesiredSchema,
  reportedSchema: CoffeeMachineReportedSchema,
  // The desired state is a single optional bool: every value is valid.
  validateDesired(): void {},
};
