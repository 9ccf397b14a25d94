import { describeWebhookBreaker, embedded } from "../helpers/webhook-suites.js";

describeWebhookBreaker(embedded);
