/*
 * msg.c: building messages (all wire forms in one allocation, once per
 * publish) and dropping references. Any thread may drop the last reference.
 */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "ws.h"

struct msg *msg_new(span_t channel, uint32_t chan_hash, uint64_t id, span_t event, span_t payload,
                    int binary, uint64_t time_ms)
{
    size_t sse_len = wire_sse_size(id, event, payload);
    size_t json_len = wire_json_msg_size(id, event, payload);
    size_t json_frame = 12 + channel.len + 2 + json_len - 1; /* {"channel":"NAME", + json[1:] */
    uint8_t json_hdr[WS_MAX_HEADER];
    size_t json_hdr_len = ws_frame_header(json_hdr, WS_OP_TEXT, 1, 0, json_frame, NULL);
    size_t head_len = json_hdr_len + 12 + channel.len + 2;
    size_t total = channel.len + event.len + payload.len + sse_len + json_len + head_len;
    struct msg *m = malloc(sizeof(*m) + total);
    if (!m)
        return NULL;
    atomic_init(&m->rc.refs, 1);
    m->rc.type = RC_MSG;
    m->binary = binary ? 1 : 0;
    m->event_len = (uint16_t)event.len;
    m->chan_len = (uint16_t)channel.len;
    m->chan_hash = chan_hash;
    m->id = id;
    m->time_ms = time_ms;
    m->gather = NULL;

    char *p = span_put(m->data, channel);
    span_t ev = span_of(p, event.len);
    p = span_put(p, event);
    m->payload = span_of(p, payload.len);
    p = span_put(p, payload);
    char *end = wire_sse_write(p, id, ev, m->payload);
    m->sse = span_of(p, (size_t)(end - p));
    size_t id_line = 4 + wire_u64_len(id) + 1;
    m->sse_body = span_of(p + id_line, m->sse.len - id_line);
    p = end;
    end = wire_json_msg_write(p, id, ev, m->payload);
    m->json = span_of(p, (size_t)(end - p));
    p = end;
    end = span_put(p, span_of((const char *)json_hdr, json_hdr_len));
    end = span_put(span_put(end, SPAN_LIT("{\"channel\":\"")), channel);
    end = span_put(end, SPAN_LIT("\","));
    m->ws_json_head = span_of(p, (size_t)(end - p));
    m->ws_hdr_len = (uint8_t)ws_frame_header(m->ws_hdr, binary ? WS_OP_BINARY : WS_OP_TEXT, 1, 0,
                                             payload.len, NULL);
    return m;
}

struct blob *blob_new(size_t len)
{
    struct blob *b = malloc(sizeof(*b) + len);
    if (!b)
        return NULL;
    atomic_init(&b->rc.refs, 1);
    b->rc.type = RC_BLOB;
    b->len = (uint32_t)len;
    return b;
}

void rc_put(struct rc *rc)
{
    if (!rc)
        return;
    if (atomic_fetch_sub_explicit(&rc->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(rc);
}
