/*
 * core.h for the WebAssembly build: what odh loads (src/composefs/format/core.ts). One instance runs
 * one job and is then dropped, so memory is a bump allocator that never returns pages to the host:
 * the latest block grows and is freed in place, other freed blocks of 4 KiB or more are reused.
 */
#include "core.h"

#define EXPORT(name) __attribute__((export_name(name)))
#define IMPORT(name) __attribute__((import_module("odh"), import_name(name)))

/* The host throws the failure in core_err as an OdhError (never returns to the core). */
IMPORT("fail") void host_fail(void);
/* The host takes n image bytes at p (copies them before returning). */
IMPORT("output") void host_output(const uint8_t *p, size_t n);

extern unsigned char __heap_base;

#define ALIGN 16u
#define PAGE 65536u

static uintptr_t heap_top;    /* first free byte */
static uintptr_t heap_end;    /* end of the memory */
static uintptr_t last_block;  /* the latest block (grow and free in place) */
/* Above this, memory has never been handed out: it is still zero as memory.grow made it. Zeroing
 * only below it keeps capacity that is never used untouched (no page faults for it). */
static uintptr_t high_water;

void *memcpy(void *restrict d, const void *restrict s, size_t n) {
  __builtin_memcpy(d, s, n); /* memory.copy */
  return d;
}

void *memmove(void *d, const void *s, size_t n) {
  __builtin_memmove(d, s, n); /* memory.copy handles overlap */
  return d;
}

void *memset(void *d, int c, size_t n) {
  __builtin_memset(d, c, n); /* memory.fill */
  return d;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static void out_of_memory(void) { core_failf(CORE_LIMIT, "out of memory"); }

/* Makes [heap_top, heap_top + n) exist; fresh pages are zero. */
static void ensure(size_t n) {
  if (heap_top == 0) {
    heap_top = ((uintptr_t)&__heap_base + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
    heap_end = __builtin_wasm_memory_size(0) * PAGE;
  }
  if (n > UINTPTR_MAX - heap_top - ALIGN) out_of_memory();
  uintptr_t need = heap_top + n;
  if (need <= heap_end) return;
  size_t pages = (need - heap_end + PAGE - 1) / PAGE;
  /* Grow by at least a quarter of what exists, so that growth costs amortise. */
  size_t quarter = heap_end / PAGE / 4;
  if (pages < quarter) pages = quarter;
  if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) {
    pages = (need - heap_end + PAGE - 1) / PAGE;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) out_of_memory();
  }
  heap_end += pages * PAGE;
}

/* Zeroes [p, p + n) where it may have been used before. */
static void zero(uintptr_t p, size_t n) {
  if (p < high_water) memset((void *)p, 0, (high_water - p < n ? high_water - p : n));
}

/* heap_top moves to end (aligned); the high-water mark follows it up. */
static void take(uintptr_t end) {
  heap_top = (end + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
  if (heap_top > high_water) high_water = heap_top;
}

/* Every block has a header of ALIGN bytes before it holding its size (what it can hold). */
#define HEADER ALIGN
static size_t *size_of(uintptr_t block) { return (size_t *)(block - HEADER); }

/* Freed blocks of at least REUSE_MIN bytes (not the latest one, which goes back to the heap), each
 * holding the next one's address in its first word: later allocations reuse them, so the columns
 * and lists that grow by moving leave no garbage behind. Smaller blocks are not worth a search. */
#define REUSE_MIN 4096
static uintptr_t free_blocks;

/* The smallest free block that holds n bytes, unlinked, or 0. */
static uintptr_t reuse(size_t n) {
  uintptr_t best = 0, *best_link = 0;
  for (uintptr_t *link = &free_blocks; *link != 0; link = (uintptr_t *)*link) {
    size_t size = *size_of(*link);
    if (size >= n && (best == 0 || size < *size_of(best))) {
      best = *link;
      best_link = link;
    }
  }
  if (best != 0) *best_link = *(uintptr_t *)best;
  return best;
}

void *core_alloc(size_t n) {
  if (n >= REUSE_MIN) {
    uintptr_t b = reuse(n);
    if (b != 0) {
      memset((void *)b, 0, n);
      return (void *)b;
    }
  }
  ensure(HEADER + n);
  uintptr_t b = heap_top + HEADER;
  zero(b, n);
  take(b + n);
  *size_of(b) = heap_top - b;
  last_block = b;
  return (void *)b;
}

void *core_grow(void *p, size_t old_n, size_t new_n) {
  if (p == 0) return core_alloc(new_n);
  uintptr_t b = (uintptr_t)p;
  if (b == last_block) {
    heap_top = b;
    ensure(new_n);
    if (new_n > old_n) zero(b + old_n, new_n - old_n);
    take(b + new_n);
    *size_of(b) = heap_top - b;
    return p;
  }
  if (new_n <= *size_of(b)) {
    if (new_n > old_n) memset((char *)p + old_n, 0, new_n - old_n);
    return p;
  }
  void *q = core_alloc(new_n);
  memcpy(q, p, old_n < new_n ? old_n : new_n);
  core_free(p);
  return q;
}

void core_free(void *p) {
  uintptr_t b = (uintptr_t)p;
  if (b == 0) return;
  if (b == last_block) {
    heap_top = b - HEADER;
    last_block = 0;
  } else if (*size_of(b) >= REUSE_MIN) {
    *(uintptr_t *)b = free_blocks;
    free_blocks = b;
  }
}

void core_output(const uint8_t *p, size_t n) { host_output(p, n); }

_Noreturn void core_fail(void) {
  host_fail();
  __builtin_unreachable();
}

EXPORT("odh_error") core_error *odh_error(void) { return &core_err; }
/* n bytes for the host to fill (input chunks, columns). */
EXPORT("odh_alloc") void *odh_alloc(size_t n) { return core_alloc(n); }
/* Bytes of memory ever handed out (the bench reports it). */
EXPORT("odh_heap_high_water") double odh_heap_high_water(void) { return (double)high_water; }
