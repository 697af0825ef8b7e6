/*
 * utf8.h: an incremental UTF-8 validator.
 *
 * A DFA over bytes in the manner of Bjoern Hoehrmann's decoder (our own table)
 * that accepts exactly the well-formed sequences of Unicode section 3.9, table
 * 3-7: no overlongs, no surrogates, nothing above U+10FFFF, no C0, C1 or
 * F5..FF. Its only state is one uint32_t that the caller keeps between calls,
 * so text split anywhere, even inside a character, validates piece by piece.
 * Pure and thread-agnostic; it validates, it does not decode.
 */
#ifndef RINGCAST_UTF8_H
#define RINGCAST_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The two states a caller tests for. Any other value means "inside a
 * multi-byte sequence": valid so far, but not yet a complete text. */
#define UTF8_ACCEPT 0u
#define UTF8_REJECT 1u

/*
 * Runs p[0..n) through the validator, starting from *state (UTF8_ACCEPT for a
 * new text). Stores and returns the new state. UTF8_REJECT is reached on the
 * very byte that makes the input ill-formed (E0 80 fails at the 80, a
 * truncated sequence at the byte that should have continued it); the rest of
 * the input is then not looked at, and the state stays UTF8_REJECT for every
 * later call. A text is valid if its last call returns UTF8_ACCEPT. ASCII runs
 * are skipped 8 bytes at a time.
 */
uint32_t utf8_validate(uint32_t *state, const uint8_t *p, size_t n);

/* Returns 1 if p[0..n) is a complete, valid UTF-8 text, else 0. */
int utf8_is_valid(const uint8_t *p, size_t n);

/* Internal, shared with the tests: the same as utf8_validate without the ASCII
 * fast path, one byte at a time through the DFA. */
uint32_t utf8__validate_dfa(uint32_t *state, const uint8_t *p, size_t n);

#endif
