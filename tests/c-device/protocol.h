/*
 * The Tether device protocol for a small LED device: nanopb structs in static memory, no heap.
 * The transport (MQTT) is the caller's: it hands every downlink payload to tether_on_downlink and
 * publishes what the send callback is given on `tether/v1/devices/{device}/up`.
 */
#ifndef TETHER_PROTOCOL_H
#define TETHER_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Receipts this device can hold: the nanopb max_count of UplinkReceipt.message_ids in its
 * options (small.options) and the max_receipt_ids it sends, which must agree. */
#ifndef TETHER_MAX_RECEIPT_IDS
#define TETHER_MAX_RECEIPT_IDS 8
#endif

/* Publishes one encoded Uplink (QoS 1). Returns 0 when the broker took it. */
typedef int (*tether_send_fn)(const uint8_t *payload, size_t len);

/* What the device has done so far, for its main loop and its log. */
typedef struct {
    uint64_t desired_version;   /* the newest desired state applied */
    uint32_t brightness;        /* the LED, 0–100 */
    unsigned tasks_succeeded;   /* tasks ended with a TaskResult success */
    bool telemetry_receipted;   /* the receipt for the telemetry message came */
    unsigned downlinks;         /* downlink messages decoded */
    unsigned decode_errors;     /* downlink messages nanopb could not decode */
} tether_status_t;

void tether_init(const char *firmware_version, tether_send_fn send);
/* The first uplink after every (re)connect, once subscribed to the downlink topic. */
int tether_hello(void);
/* Handles one downlink payload (desired state, task, cancel, receipt, ...). */
int tether_on_downlink(const uint8_t *payload, size_t len);
/* Sends `n` samples of `metric` (now, one per second back) and asks for a receipt. */
int tether_send_telemetry(const char *metric, const double *values, unsigned n);
const tether_status_t *tether_status(void);

#endif
