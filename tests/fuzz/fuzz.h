/*
 * Shared by the fuzz targets. Each target defines LLVMFuzzerTestOneInput;
 * built with clang's -fsanitize=fuzzer it is a libFuzzer binary, otherwise
 * replay_main.c runs it over corpus files as a regression test.
 */
#ifndef TW_FUZZ_H
#define TW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Stops the run when a property the code promises does not hold. */
#define FUZZ_REQUIRE(cond)                                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Consumes input bytes front to back; past the end every read is 0. */
struct fuzz_input {
    const uint8_t *data;
    size_t size, pos;
};

static inline uint8_t fuzz_u8(struct fuzz_input *in)
{
    return in->pos < in->size ? in->data[in->pos++] : 0;
}

static inline uint16_t fuzz_u16(struct fuzz_input *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* Returns up to want bytes of input in place; *got receives the count. */
static inline const uint8_t *fuzz_bytes(struct fuzz_input *in, size_t want,
                                        size_t *got)
{
    size_t left = in->size - in->pos;
    *got = want < left ? want : left;
    const uint8_t *p = in->data + in->pos;
    in->pos += *got;
    return p;
}

static inline size_t fuzz_left(const struct fuzz_input *in)
{
    return in->size - in->pos;
}

#endif
