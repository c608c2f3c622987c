/* engine/symbol.h - name a code address, async-signal-safely; and a small
 * text builder that only writes into a caller's buffer.
 *
 * Role: the fault-signal report (engine/fault.c) and the watchdog report
 * (engine/watchdog.c) print a behaviour as "name+0xoff".  dladdr() cannot be
 * used in a signal handler (it takes the dynamic loader's lock, and a fault
 * inside the loader would deadlock), and it only sees exported (.dynsym)
 * symbols, while behaviours are usually static functions.  So this reads
 * /proc/self/maps to find the object that maps the address, then that
 * object's ELF .symtab (falling back to .dynsym) with open/pread/close on
 * stack buffers only: no malloc, no stdio, no locks.  We write our own
 * rather than use libbacktrace or libdw because both allocate.
 *
 * Caveats (docs/failure.md repeats them): a stripped binary has no .symtab,
 * so only exported names are found; a file replaced on disk since it was
 * mapped gives wrong names; the lookup reads files, so it costs a few
 * hundred microseconds to milliseconds, which is fine for a report that
 * ends the process or names a behaviour that already overran.
 *
 * Threading: reentrant; touches only its arguments and the file system.
 */
#ifndef AXON_ENGINE_SYMBOL_H
#define AXON_ENGINE_SYMBOL_H

#include <stddef.h>
#include <stdint.h>

/* Write "name+0xoff" (or just "name" at offset 0) for addr into buf (always
 * NUL-terminated when len > 0).  Returns 0, or -1 when no symbol covers the
 * address (buf then holds "?"). */
int ax__symbolize(const void *addr, char *buf, size_t len);

/* Append-only text in a fixed buffer; truncates silently, always
 * NUL-terminated.  Async-signal-safe. */
typedef struct ax_sbuf {
    char *p;
    size_t len, cap;
} ax_sbuf_t;

void ax__sb_init(ax_sbuf_t *b, char *mem, size_t cap);
void ax__sb_str(ax_sbuf_t *b, const char *s);
void ax__sb_dec(ax_sbuf_t *b, uint64_t v);
void ax__sb_hex(ax_sbuf_t *b, uint64_t v); /* "0x1f" */
/* An actor reference as the engine prints it everywhere: 0x + 16 digits. */
void ax__sb_ref(ax_sbuf_t *b, uint64_t ref);

#endif /* AXON_ENGINE_SYMBOL_H */
