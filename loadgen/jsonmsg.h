/*
 * jsonmsg.h: reads the JSON that ringcast sends poll clients and
 * ringcast.json WebSocket subscribers: a poll answer
 * {"channel":"c","messages":[{"id":N,"data":"..."},...],"last_id":N[,"gap":{...}]}
 * and a WebSocket frame {"channel":"c","id":N,"data":"..."} or {"gap":{...}}.
 *
 * Pure, over byte spans, in the picohttpparser shape: nothing allocates, no
 * socket, no global state; outputs point into the caller's bytes. It is not a
 * general JSON parser: it knows the shapes ringcast writes (keys in the order
 * above, names that need no escaping) and hands data strings back still
 * escaped, which is what ringload's ASCII payloads need. Several-channel
 * answers ({"channels":[...]}) are refused.
 */
#ifndef RINGLOAD_JSONMSG_H
#define RINGLOAD_JSONMSG_H

#include <stddef.h>
#include <stdint.h>

#include "span.h"

/* One message: its id and its data string's bytes between the quotes, still
 * escaped. */
struct jsonmsg {
    uint64_t id;
    span_t data;
};

/*
 * Reads a ringcast.json WebSocket frame's text. Returns 1 with *m filled for
 * a message, 0 for a gap frame ({"gap":...}), -1 for anything else.
 */
int jsonmsg_frame(span_t text, struct jsonmsg *m);

/* A poll answer being read: jsonmsg_answer fills it, jsonmsg_next walks its
 * messages. */
struct jsonmsg_answer {
    uint64_t last_id;
    int gap;      /* 1 if the answer carries a "gap" object */
    span_t _rest; /* private: the messages not yet returned */
};

/* Reads a whole one-channel poll answer body. Returns 0, or -1 when it is not
 * in the form above. */
int jsonmsg_answer(span_t body, struct jsonmsg_answer *a);

/* The answer's next message: 1 with *m filled, 0 at the end, -1 when an
 * element is malformed. */
int jsonmsg_next(struct jsonmsg_answer *a, struct jsonmsg *m);

#endif
