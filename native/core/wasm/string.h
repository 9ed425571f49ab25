/* The four memory functions the core uses, for the WebAssembly build (no libc; core-wasm.c defines
 * them over the bulk-memory instructions). */
#ifndef ODH_WASM_STRING_H
#define ODH_WASM_STRING_H
#include <stddef.h>
void *memcpy(void *restrict d, const void *restrict s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
#endif
