/* engine/symbol.c - async-signal-safe address-to-symbol lookup and text
 * building (see symbol.h for why it exists and its caveats).
 *
 * Only open, read, pread and close are called, all async-signal-safe
 * (POSIX.1-2008, signal-safety(7)); every buffer is on the stack.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "engine/symbol.h"

/* ---- text ------------------------------------------------------------------------------ */

void ax__sb_init(ax_sbuf_t *b, char *mem, size_t cap)
{
    b->p = mem;
    b->len = 0;
    b->cap = cap;
    if (cap)
        mem[0] = '\0';
}

static void sb_putc(ax_sbuf_t *b, char c)
{
    if (b->len + 1 < b->cap) {
        b->p[b->len++] = c;
        b->p[b->len] = '\0';
    }
}

void ax__sb_str(ax_sbuf_t *b, const char *s)
{
    while (s && *s)
        sb_putc(b, *s++);
}

void ax__sb_dec(ax_sbuf_t *b, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        sb_putc(b, tmp[--n]);
}

static void sb_hex_digits(ax_sbuf_t *b, uint64_t v, int min_digits)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v || n < min_digits);
    while (n)
        sb_putc(b, tmp[--n]);
}

void ax__sb_hex(ax_sbuf_t *b, uint64_t v)
{
    ax__sb_str(b, "0x");
    sb_hex_digits(b, v, 1);
}

void ax__sb_ref(ax_sbuf_t *b, uint64_t ref)
{
    ax__sb_str(b, "0x");
    sb_hex_digits(b, ref, 16);
}

/* ---- /proc/self/maps ------------------------------------------------------------------- */

static bool parse_hex(const char **s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = *s;
    bool any = false;
    for (;; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (*p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else
            break;
        v = (v << 4) | d;
        any = true;
    }
    *s = p;
    *out = v;
    return any;
}

/* One maps line: "start-end perms offset dev inode   path".  True when the
 * line's range covers addr and names a file; *path points into line. */
static bool maps_line_covers(char *line, uint64_t addr, uint64_t *start, uint64_t *off,
                             const char **path)
{
    const char *p = line;
    uint64_t end;
    if (!parse_hex(&p, start) || *p++ != '-' || !parse_hex(&p, &end))
        return false;
    if (addr < *start || addr >= end)
        return false;
    for (int field = 0; field < 1; field++) { /* skip perms */
        while (*p == ' ')
            p++;
        while (*p && *p != ' ')
            p++;
    }
    while (*p == ' ')
        p++;
    if (!parse_hex(&p, off))
        return false;
    for (int field = 0; field < 2; field++) { /* skip dev, inode */
        while (*p == ' ')
            p++;
        while (*p && *p != ' ')
            p++;
    }
    while (*p == ' ')
        p++;
    if (*p != '/')
        return false; /* anonymous, [vdso], [stack], ... */
    *path = p;
    return true;
}

/* Find the mapping of addr: copies its file path into path, sets the
 * mapping's start and file offset. */
static bool find_mapping(uint64_t addr, char *path, size_t pathlen, uint64_t *start,
                         uint64_t *off)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[2048], line[640];
    size_t ll = 0;
    bool found = false, skipping = false;
    ssize_t n;
    while (!found && (n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n && !found; i++) {
            char c = buf[i];
            if (c != '\n') {
                if (ll + 1 < sizeof line)
                    line[ll++] = c;
                else
                    skipping = true; /* a path longer than we can hold */
                continue;
            }
            line[ll] = '\0';
            const char *p;
            if (!skipping && maps_line_covers(line, addr, start, off, &p)) {
                size_t pl = strlen(p);
                if (pl >= pathlen)
                    break;
                memcpy(path, p, pl + 1);
                found = true;
            }
            ll = 0;
            skipping = false;
        }
    }
    close(fd);
    return found;
}

/* ---- ELF ----------------------------------------------------------------------------- */

static bool pread_all(int fd, void *dst, size_t len, uint64_t off)
{
    char *d = dst;
    while (len) {
        ssize_t n = pread(fd, d, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        d += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return true;
}

/* The file's virtual address for file offset foff (through its PT_LOAD). */
static bool file_vaddr(int fd, const Elf64_Ehdr *eh, uint64_t foff, uint64_t *vaddr)
{
    Elf64_Phdr ph;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (!pread_all(fd, &ph, sizeof ph, eh->e_phoff + (uint64_t)i * eh->e_phentsize))
            return false;
        if (ph.p_type == PT_LOAD && foff >= ph.p_offset && foff < ph.p_offset + ph.p_filesz) {
            *vaddr = foff - ph.p_offset + ph.p_vaddr;
            return true;
        }
    }
    return false;
}

/* Best function symbol of one symbol table covering vaddr. */
static bool search_table(int fd, const Elf64_Ehdr *eh, uint32_t want_type, uint64_t vaddr,
                         char *name, size_t namelen, uint64_t *sym_value)
{
    Elf64_Shdr sh, strsh;
    for (unsigned s = 0; s < eh->e_shnum; s++) {
        if (!pread_all(fd, &sh, sizeof sh, eh->e_shoff + (uint64_t)s * eh->e_shentsize))
            return false;
        if (sh.sh_type != want_type || sh.sh_entsize != sizeof(Elf64_Sym) || !sh.sh_size)
            continue;
        if (sh.sh_link >= eh->e_shnum ||
            !pread_all(fd, &strsh, sizeof strsh, eh->e_shoff + (uint64_t)sh.sh_link * eh->e_shentsize))
            return false;
        uint64_t nsyms = sh.sh_size / sizeof(Elf64_Sym), best_name = 0;
        bool found = false;
        Elf64_Sym syms[64];
        for (uint64_t i = 0; i < nsyms; i += 64) {
            uint64_t k = nsyms - i < 64 ? nsyms - i : 64;
            if (!pread_all(fd, syms, (size_t)k * sizeof(Elf64_Sym), sh.sh_offset + i * sizeof(Elf64_Sym)))
                return false;
            for (uint64_t j = 0; j < k; j++) {
                const Elf64_Sym *y = &syms[j];
                unsigned t = ELF64_ST_TYPE(y->st_info);
                if ((t != STT_FUNC && t != STT_GNU_IFUNC) || y->st_shndx == SHN_UNDEF)
                    continue;
                if (vaddr < y->st_value || vaddr >= y->st_value + (y->st_size ? y->st_size : 1))
                    continue;
                if (!found || y->st_value > *sym_value) { /* the innermost */
                    found = true;
                    *sym_value = y->st_value;
                    best_name = y->st_name;
                }
            }
        }
        if (!found)
            return false;
        size_t got = 0;
        /* The name, a byte range at a time (it ends at a NUL). */
        while (got + 1 < namelen) {
            size_t chunk = namelen - 1 - got < 64 ? namelen - 1 - got : 64;
            ssize_t n = pread(fd, name + got, chunk, (off_t)(strsh.sh_offset + best_name + got));
            if (n <= 0)
                break;
            void *nul = memchr(name + got, '\0', (size_t)n);
            if (nul)
                return true;
            got += (size_t)n;
        }
        name[got] = '\0';
        return got > 0;
    }
    return false;
}

int ax__symbolize(const void *addr, char *buf, size_t len)
{
    ax_sbuf_t out;
    char path[512], name[256];
    uint64_t a = (uint64_t)(uintptr_t)addr, start, off, vaddr, value = 0;
    Elf64_Ehdr eh;
    if (!len)
        return -1;
    ax__sb_init(&out, buf, len);
    if (!addr || !find_mapping(a, path, sizeof path, &start, &off)) {
        ax__sb_str(&out, "?");
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && pread_all(fd, &eh, sizeof eh, 0) && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
              eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr) &&
              eh.e_shentsize == sizeof(Elf64_Shdr) &&
              file_vaddr(fd, &eh, a - start + off, &vaddr) &&
              (search_table(fd, &eh, SHT_SYMTAB, vaddr, name, sizeof name, &value) ||
               search_table(fd, &eh, SHT_DYNSYM, vaddr, name, sizeof name, &value));
    if (fd >= 0)
        close(fd);
    if (!ok) {
        ax__sb_str(&out, "?");
        return -1;
    }
    ax__sb_str(&out, name);
    if (vaddr != value) {
        ax__sb_str(&out, "+");
        ax__sb_hex(&out, vaddr - value);
    }
    return 0;
}
