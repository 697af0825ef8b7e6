/*
 * msg.c: building messages (all wire forms in one allocation, once per
 * publish), their permessage-deflate frames (at most once per form and
 * window, on the first worker that needs one) and dropping references. Any
 * thread may drop the last reference.
 */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "ws.h"
#include "wsdeflate.h"

/* Stored in ws_deflated for "send this form uncompressed", so that the
 * decision is made once too. Never freed, never handed out. */
static struct blob ws_plain;

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
    for (int f = 0; f < 2; f++)
        for (int w = 0; w < 2; w++)
            atomic_init(&m->ws_deflated[f][w], NULL);

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

/* The compressed frame of one form of m, &ws_plain when it should not be
 * compressed, or NULL on ENOMEM. */
static struct blob *ws_deflate_frame(const struct msg *m, int form, int narrow, struct wsdeflate *z)
{
    span_t parts[2];
    int n = 1, opcode;
    size_t plain;
    if (form == MSG_WS_JSON) {
        /* ws_json_head is a frame header, then {"channel":"NAME", */
        size_t text = 12 + m->chan_len + 2;
        parts[0] = span_of(m->ws_json_head.base + m->ws_json_head.len - text, text);
        parts[1] = span_of(m->json.base + 1, m->json.len - 1);
        n = 2;
        opcode = WS_OP_TEXT;
        plain = m->ws_json_head.len + parts[1].len;
        if (text + parts[1].len < WSDEFLATE_MIN_SIZE)
            return &ws_plain;
    } else {
        parts[0] = m->payload;
        opcode = m->binary ? WS_OP_BINARY : WS_OP_TEXT;
        plain = m->ws_hdr_len + m->payload.len;
        if (m->payload.len < WSDEFLATE_MIN_SIZE)
            return &ws_plain;
    }
    span_t c;
    if (wsdeflate_compress(z, narrow, parts, n, &c) < 0)
        return NULL;
    uint8_t hdr[WS_MAX_HEADER];
    size_t hl = ws_frame_header(hdr, opcode, 1, 1, c.len, NULL);
    if (hl + c.len >= plain)
        return &ws_plain;
    struct blob *b = blob_new(hl + c.len);
    if (!b)
        return NULL;
    memcpy(b->data, hdr, hl);
    memcpy(b->data + hl, c.base, c.len);
    return b;
}

struct blob *msg_ws_deflated(struct msg *m, int form, int narrow, struct wsdeflate *z)
{
    struct blob *_Atomic *slot = &m->ws_deflated[form ? 1 : 0][narrow ? 1 : 0];
    struct blob *b = atomic_load_explicit(slot, memory_order_acquire);
    if (!b) {
        if (!(b = ws_deflate_frame(m, form, narrow, z)))
            return NULL;
        /* Release: whoever loads the pointer sees the bytes behind it. */
        struct blob *first = NULL;
        if (!atomic_compare_exchange_strong_explicit(slot, &first, b, memory_order_acq_rel,
                                                     memory_order_acquire)) {
            if (b != &ws_plain)
                rc_put(&b->rc); /* another worker was first: use its copy */
            b = first;
        }
    }
    return b == &ws_plain ? NULL : b;
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
    if (rc->type == RC_MSG) {
        struct msg *m = (struct msg *)rc;
        for (int f = 0; f < 2; f++)
            for (int w = 0; w < 2; w++) {
                struct blob *b = atomic_load_explicit(&m->ws_deflated[f][w], memory_order_relaxed);
                if (b && b != &ws_plain)
                    rc_put(&b->rc);
            }
    }
    free(rc);
}
