/*
 * wire.h: encoders for the bytes a message takes on the wire: the SSE event
 * and the JSON element of poll answers, plus JSON string escaping and channel
 * name checks. Pure functions over byte spans: no allocation, no I/O, no state,
 * so any thread may call them and the fuzzer and unit tests drive them alone.
 *
 * Each encoder comes as a pair: *_size() says exactly how many bytes *_write()
 * will produce, so a caller sizes one allocation and writes once.
 */
#ifndef RINGCAST_WIRE_H
#define RINGCAST_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "span.h"

#define WIRE_CHANNEL_MAX 128
#define WIRE_EVENT_MAX 64

/* 1 when name is a valid channel or event name: 1..max bytes of [A-Za-z0-9_.:-]. */
int wire_name_ok(span_t name, size_t max);

/* JSON string body (without quotes) for arbitrary bytes: ", \ and control
 * bytes escaped, valid UTF-8 copied, each byte of an invalid sequence becomes
 * \ufffd. */
size_t wire_json_escape_size(span_t s);
char *wire_json_escape_write(char *out, span_t s);

/* Decimal digits of v. */
size_t wire_u64_len(uint64_t v);
char *wire_u64_write(char *out, uint64_t v);

/* SSE event: "id: ID\n" ["event: EV\n"] one "data: LINE\n" per line of data
 * (lines end at \n, \r\n or \r; an empty payload is one empty data line), and
 * a closing "\n". */
size_t wire_sse_size(uint64_t id, span_t event, span_t data);
char *wire_sse_write(char *out, uint64_t id, span_t event, span_t data);

/* JSON element of poll answers: {"id":ID[,"event":"EV"],"data":"..."} */
size_t wire_json_msg_size(uint64_t id, span_t event, span_t data);
char *wire_json_msg_write(char *out, uint64_t id, span_t event, span_t data);

/* Parses a decimal id ("0".."18446744073709551615", no sign, no spaces).
 * Returns 0 and sets *out, or -EINVAL. */
int wire_parse_u64(span_t s, uint64_t *out);

#endif
