/* topology/hostfile.c - the Open MPI hostfile parser for cluster plans.
 *
 * Syntax (docs/cluster-plan.md): one host per line, `NAME [slots=N]
 * [max_slots=N]`, `#` starts a comment.  A comment that begins `axon:`
 * names the host's topology for the planner, `# axon: xml=FILE` or
 * `# axon: synthetic=DESC`; mpirun skips comments, so the same file
 * launches the job and plans it.  Anything mpirun would refuse (an unknown
 * key, slots=0) is an error here too, with FILE:LINE.
 *
 * Written by hand: the format is a few tokens per line and no Debian
 * library parses it (Open MPI's own parser is internal to ORTE).
 * No hwloc here, so the fuzzer (tests/fuzz/fuzz_hostfile.c) builds this
 * file alone.
 *
 * Threading: none; a hostfile is immutable after parsing.
 * Memory: the hostfile owns one array of hosts; ax_hostfile_destroy frees it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/topology.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void ax_hostfile_destroy(ax_hostfile_t *hf)
{
    if (!hf)
        return;
    free(hf->hosts);
    free(hf);
}

int ax_hostfile_add_host(ax_hostfile_t **hf, const char *name, uint32_t slots, const char *xml,
                         const char *synthetic, char *err, size_t errlen)
{
    if (!hf || !name || !*name) {
        seterr(err, errlen, "ax_hostfile_add_host: no hostfile pointer or empty host name");
        return -EINVAL;
    }
    if (strlen(name) >= AX_HOST_NAME_MAX) {
        seterr(err, errlen, "host name '%.40s...' is %zu characters; at most %d fit", name,
               strlen(name), AX_HOST_NAME_MAX - 1);
        return -EINVAL;
    }
    if (slots == 0 || slots > AX_HOST_SLOTS_MAX) {
        seterr(err, errlen, "host %s: slots = %u: expected 1 to %u axon nodes on one host", name,
               slots, AX_HOST_SLOTS_MAX);
        return -EINVAL;
    }
    if (xml && synthetic && *xml && *synthetic) {
        seterr(err, errlen, "host %s: both an XML file and a synthetic topology: give one", name);
        return -EINVAL;
    }
    if ((xml && strlen(xml) >= AX_CONFIG_STR_MAX) ||
        (synthetic && strlen(synthetic) >= AX_CONFIG_STR_MAX)) {
        seterr(err, errlen, "host %s: the topology %s is longer than %d characters", name,
               xml && *xml ? "path" : "description", AX_CONFIG_STR_MAX - 1);
        return -EINVAL;
    }
    ax_hostfile_t *h = *hf;
    bool fresh = !h;
    if (fresh && !(h = calloc(1, sizeof *h))) {
        seterr(err, errlen, "out of memory for a hostfile");
        return -ENOMEM;
    }
    if (h->nhosts >= AX_CLUSTER_NODES_MAX || h->total_slots + slots > AX_CLUSTER_NODES_MAX) {
        seterr(err, errlen, "host %s: the cluster would have more than %u nodes, the most a "
               "plan takes", name, AX_CLUSTER_NODES_MAX);
        if (fresh)
            free(h);
        return -EINVAL;
    }
    ax_hostfile_host_t *a = realloc(h->hosts, (h->nhosts + 1) * sizeof *a);
    if (!a) {
        seterr(err, errlen, "out of memory for %u hosts", h->nhosts + 1);
        if (fresh)
            free(h);
        return -ENOMEM;
    }
    h->hosts = a;
    ax_hostfile_host_t *e = &a[h->nhosts++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->slots = slots;
    e->slots_given = true;
    if (xml)
        snprintf(e->xml, sizeof e->xml, "%s", xml);
    if (synthetic)
        snprintf(e->synthetic, sizeof e->synthetic, "%s", synthetic);
    h->total_slots += slots;
    *hf = h;
    return 0;
}

/* ---- the parser ------------------------------------------------------------ */

typedef struct span {
    const char *p;
    size_t n;
} span_t;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static span_t trim(span_t s)
{
    while (s.n && is_space(*s.p)) {
        s.p++;
        s.n--;
    }
    while (s.n && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* Next whitespace-separated token of *s, advancing *s; n == 0 at the end. */
static span_t next_token(span_t *s)
{
    *s = trim(*s);
    span_t t = { s->p, 0 };
    while (t.n < s->n && !is_space(s->p[t.n]))
        t.n++;
    s->p += t.n;
    s->n -= t.n;
    return t;
}

static bool span_is(span_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* A host name or address as Open MPI takes it: letters, digits and . - _
 * (names), : [ ] (IPv6). */
static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
}

/* Decimal 1..AX_HOST_SLOTS_MAX. */
static bool parse_count(span_t v, uint32_t *out)
{
    if (v.n == 0 || v.n > 9)
        return false;
    uint32_t x = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        x = x * 10 + (uint32_t)(v.p[i] - '0'); /* 9 digits: below 2^32 */
    }
    if (x == 0 || x > AX_HOST_SLOTS_MAX)
        return false;
    *out = x;
    return true;
}

/* The keys Open MPI's hostfile lexer knows (orte/util/hostfile/hostfile_lex.l). */
enum key_kind { KEY_UNKNOWN, KEY_SLOTS, KEY_MAX, KEY_OTHER };

static enum key_kind classify(span_t key)
{
    static const char *const slot_keys[] = { "slots", "cpu", "count" };
    static const char *const max_keys[] = { "max_slots", "max-slots", "slots_max", "slots-max",
                                            "max_cpu", "max-cpu", "cpu_max", "cpu-max",
                                            "max_count", "max-count", "count_max", "count-max" };
    static const char *const other_keys[] = { "username", "user-name", "user_name", "boards",
                                              "sockets", "sockets_per_board",
                                              "sockets-per-board", "cores", "cores_per_socket",
                                              "cores-per-socket", "cpu_set", "cpu-set" };
    for (size_t i = 0; i < sizeof slot_keys / sizeof *slot_keys; i++)
        if (span_is(key, slot_keys[i]))
            return KEY_SLOTS;
    for (size_t i = 0; i < sizeof max_keys / sizeof *max_keys; i++)
        if (span_is(key, max_keys[i]))
            return KEY_MAX;
    for (size_t i = 0; i < sizeof other_keys / sizeof *other_keys; i++)
        if (span_is(key, other_keys[i]))
            return KEY_OTHER;
    return KEY_UNKNOWN;
}

/* The directory part of `name` ("" for a bare file name), for xml=. */
static size_t dir_len(const char *name)
{
    const char *slash = strrchr(name, '/');
    return slash ? (size_t)(slash - name) + 1 : 0;
}

static int parse_line(ax_hostfile_t **hf, const char *name, uint32_t lineno, span_t line,
                      char *err, size_t errlen)
{
    /* A comment starts at '#' or "//" (Open MPI takes both). */
    span_t body = line, comment = { NULL, 0 };
    const char *hash = memchr(line.p, '#', line.n);
    for (size_t i = 0; i + 1 < (hash ? (size_t)(hash - line.p) : line.n); i++)
        if (line.p[i] == '/' && line.p[i + 1] == '/') {
            hash = line.p + i;
            break;
        }
    bool is_hash = hash && *hash == '#';
    if (hash) {
        body.n = (size_t)(hash - line.p);
        comment.p = hash + (is_hash ? 1 : 2);
        comment.n = line.n - body.n - (is_hash ? 1 : 2);
    }
    /* "# axon: key=value": the planner's directive. */
    span_t dir = trim(comment);
    bool directive = is_hash && dir.n >= 5 && memcmp(dir.p, "axon:", 5) == 0;
    if (directive) {
        dir.p += 5;
        dir.n -= 5;
        dir = trim(dir);
    }

    span_t rest = body;
    span_t host = next_token(&rest);
    if (host.n == 0) {
        if (directive) {
            seterr(err, errlen, "%s:%u: an '# axon:' comment on a line without a host: put it "
                   "after the host it describes, e.g. 'node1 slots=1 # axon: xml=node1.xml'",
                   name, lineno);
            return -EINVAL;
        }
        return 0; /* blank or comment */
    }
    if (memchr(host.p, '=', host.n)) {
        seterr(err, errlen, "%s:%u: '%.*s' where a host name belongs: a line starts with the "
               "host, e.g. 'node1 slots=2'", name, lineno, (int)(host.n > 60 ? 60 : host.n),
               host.p);
        return -EINVAL;
    }
    /* "user@host": Open MPI logs in as user; the plan needs only the host. */
    const char *at = NULL;
    for (size_t i = 0; i < host.n; i++)
        if (host.p[i] == '@')
            at = host.p + i;
    if (at) {
        host.n -= (size_t)(at + 1 - host.p);
        host.p = at + 1;
        if (host.n == 0) {
            seterr(err, errlen, "%s:%u: 'user@' without a host after it", name, lineno);
            return -EINVAL;
        }
    }
    if (host.n >= AX_HOST_NAME_MAX) {
        seterr(err, errlen, "%s:%u: host name of %zu characters; at most %d fit", name, lineno,
               host.n, AX_HOST_NAME_MAX - 1);
        return -EINVAL;
    }
    for (size_t i = 0; i < host.n; i++)
        if (!host_char(host.p[i])) {
            unsigned char c = (unsigned char)host.p[i];
            char shown[8];
            if (c >= 0x20 && c < 0x7f)
                snprintf(shown, sizeof shown, "'%c'", c);
            else
                snprintf(shown, sizeof shown, "0x%02x", c);
            seterr(err, errlen, "%s:%u: host name '%.*s' has the character %s: a host is a "
                   "name or an address (letters, digits, . - _ : [ ])", name, lineno,
                   (int)(host.n > 60 ? 60 : host.n), host.p, shown);
            return -EINVAL;
        }
    char hname[AX_HOST_NAME_MAX];
    memcpy(hname, host.p, host.n);
    hname[host.n] = '\0';
    if (*hf)
        for (uint32_t i = 0; i < (*hf)->nhosts; i++)
            if (strcmp((*hf)->hosts[i].name, hname) == 0) {
                seterr(err, errlen, "%s:%u: host %s is already listed at line %u: list each "
                       "host once, with slots=N for N axon nodes on it", name, lineno, hname,
                       (*hf)->hosts[i].line);
                return -EINVAL;
            }

    uint32_t slots = 1, max_slots = 0;
    bool have_slots = false, have_max = false;
    /* KEY=VALUE pairs, with optional blanks around '=' as Open MPI allows. */
    for (;;) {
        rest = trim(rest);
        if (!rest.n)
            break;
        span_t key = { rest.p, 0 };
        while (key.n < rest.n && !is_space(rest.p[key.n]) && rest.p[key.n] != '=')
            key.n++;
        rest.p += key.n;
        rest.n -= key.n;
        rest = trim(rest);
        int shown = (int)(key.n > 60 ? 60 : key.n);
        if (key.n == 0) {
            seterr(err, errlen, "%s:%u: '=' without a key before it; write slots=N", name,
                   lineno);
            return -EINVAL;
        }
        enum key_kind kind = classify(key);
        if (kind == KEY_UNKNOWN) {
            seterr(err, errlen, "%s:%u: '%.*s': not a hostfile key; a host line takes slots=N "
                   "(or cpu=, count=) and max_slots=N, and the planner reads '# axon: "
                   "xml=FILE' or '# axon: synthetic=DESC' from its comment", name, lineno, shown,
                   key.p);
            return -EINVAL;
        }
        if (!rest.n || rest.p[0] != '=') {
            seterr(err, errlen, "%s:%u: '%.*s' needs a value, e.g. %.*s=2", name, lineno, shown,
                   key.p, shown, key.p);
            return -EINVAL;
        }
        rest.p++;
        rest.n--;
        rest = trim(rest);
        span_t val = { rest.p, 0 };
        while (val.n < rest.n && !is_space(rest.p[val.n]))
            val.n++;
        rest.p += val.n;
        rest.n -= val.n;
        if (kind == KEY_OTHER) { /* Open MPI's own (user name, board layout): not planned */
            if (val.n == 0) {
                seterr(err, errlen, "%s:%u: '%.*s=' has no value", name, lineno, shown, key.p);
                return -EINVAL;
            }
            continue;
        }
        bool is_slots = kind == KEY_SLOTS;
        if ((is_slots && have_slots) || (!is_slots && have_max)) {
            seterr(err, errlen, "%s:%u: %s is given twice (as %.*s); give it once", name,
                   lineno, is_slots ? "the slot count" : "the slot maximum", shown, key.p);
            return -EINVAL;
        }
        uint32_t v;
        if (!parse_count(val, &v)) {
            seterr(err, errlen, "%s:%u: %.*s = '%.*s': expected a whole number from 1 to %u",
                   name, lineno, shown, key.p, (int)(val.n > 40 ? 40 : val.n), val.p,
                   AX_HOST_SLOTS_MAX);
            return -EINVAL;
        }
        if (is_slots) {
            slots = v;
            have_slots = true;
        } else {
            max_slots = v;
            have_max = true;
        }
    }
    if (have_max && slots > max_slots) {
        seterr(err, errlen, "%s:%u: slots = %u is more than max_slots = %u; lower slots or "
               "raise max_slots", name, lineno, slots, max_slots);
        return -EINVAL;
    }

    char xml[AX_CONFIG_STR_MAX] = "", synth[AX_CONFIG_STR_MAX] = "";
    if (directive) {
        const char *eq = memchr(dir.p, '=', dir.n);
        span_t key = { dir.p, eq ? (size_t)(eq - dir.p) : dir.n };
        key = trim(key);
        span_t val = trim((span_t){ eq ? eq + 1 : dir.p + dir.n, eq ? dir.n - (size_t)(eq - dir.p) - 1 : 0 });
        bool is_xml = span_is(key, "xml"), is_syn = span_is(key, "synthetic");
        if (!eq || (!is_xml && !is_syn)) {
            seterr(err, errlen, "%s:%u: '# axon: %.*s': expected xml=FILE or synthetic=DESC "
                   "(e.g. synthetic=pack:2 numa:2 l3:2 core:8 pu:2)", name, lineno,
                   (int)(dir.n > 60 ? 60 : dir.n), dir.p);
            return -EINVAL;
        }
        if (val.n == 0) {
            seterr(err, errlen, "%s:%u: '# axon: %.*s=' has no value", name, lineno,
                   (int)key.n, key.p);
            return -EINVAL;
        }
        for (size_t i = 0; i < val.n; i++)
            if ((unsigned char)val.p[i] < 0x20) {
                seterr(err, errlen, "%s:%u: the %.*s value has a control character (0x%02x)",
                       name, lineno, (int)key.n, key.p, (unsigned char)val.p[i]);
                return -EINVAL;
            }
        if (is_xml) {
            /* Relative to the hostfile's directory, so a plan does not depend
             * on where axon-topo runs. */
            size_t d = val.p[0] == '/' ? 0 : dir_len(name);
            if (d + val.n >= sizeof xml) {
                seterr(err, errlen, "%s:%u: xml path of %zu characters (with the hostfile's "
                       "directory); at most %d fit", name, lineno, d + val.n,
                       AX_CONFIG_STR_MAX - 1);
                return -EINVAL;
            }
            memcpy(xml, name, d);
            memcpy(xml + d, val.p, val.n);
            xml[d + val.n] = '\0';
        } else {
            if (val.n >= sizeof synth) {
                seterr(err, errlen, "%s:%u: synthetic description of %zu characters; at most "
                       "%d fit", name, lineno, val.n, AX_CONFIG_STR_MAX - 1);
                return -EINVAL;
            }
            memcpy(synth, val.p, val.n);
            synth[val.n] = '\0';
        }
    }

    char why[300];
    int rc = ax_hostfile_add_host(hf, hname, slots, xml, synth, why, sizeof why);
    if (rc < 0) {
        seterr(err, errlen, "%s:%u: %s", name, lineno, why);
        return rc;
    }
    ax_hostfile_host_t *e = &(*hf)->hosts[(*hf)->nhosts - 1];
    e->line = lineno;
    e->slots_given = have_slots;
    e->max_slots = have_max ? max_slots : 0;
    return 0;
}

int ax_hostfile_parse(const char *text, size_t len, const char *name, ax_hostfile_t **out,
                      char *err, size_t errlen)
{
    if (!out || (!text && len)) {
        seterr(err, errlen, "ax_hostfile_parse: text or out is NULL");
        return -EINVAL;
    }
    *out = NULL;
    if (!name)
        name = "<hostfile>";
    if (len && memchr(text, '\0', len)) {
        size_t at = (size_t)((const char *)memchr(text, '\0', len) - text);
        uint32_t line = 1;
        for (size_t i = 0; i < at; i++)
            line += text[i] == '\n';
        seterr(err, errlen, "%s:%u: a NUL byte: a hostfile is text, one host per line", name,
               line);
        return -EINVAL;
    }
    ax_hostfile_t *hf = NULL;
    uint32_t lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (lineno == UINT32_MAX) {
            seterr(err, errlen, "%s: more than %u lines", name, UINT32_MAX);
            ax_hostfile_destroy(hf);
            return -EINVAL;
        }
        lineno++;
        int rc = parse_line(&hf, name, lineno, (span_t){ text + pos, end - pos }, err, errlen);
        if (rc < 0) {
            ax_hostfile_destroy(hf);
            return rc;
        }
        pos = end + 1;
    }
    if (!hf) {
        seterr(err, errlen, "%s: no host listed: write one line per host, e.g. 'node1 slots=1'",
               name);
        return -EINVAL;
    }
    snprintf(hf->path, sizeof hf->path, "%s", name);
    *out = hf;
    return 0;
}

int ax_hostfile_load(const char *path, ax_hostfile_t **out, char *err, size_t errlen)
{
    if (!path || !out) {
        seterr(err, errlen, "ax_hostfile_load: path or out is NULL");
        return -EINVAL;
    }
    *out = NULL;
    if (strlen(path) >= AX_CONFIG_STR_MAX) {
        seterr(err, errlen, "hostfile path of %zu characters; at most %d fit", strlen(path),
               AX_CONFIG_STR_MAX - 1);
        return -EINVAL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        seterr(err, errlen, "%s: cannot open the hostfile: %s", path, strerror(e));
        return -e;
    }
    /* A hostfile lists hosts: 16 MiB is far more than any real one. */
    enum { LIMIT = 16u << 20 };
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= LIMIT) {
                seterr(err, errlen, "%s: larger than %u MiB: not a hostfile", path, LIMIT >> 20);
                rc = -EFBIG;
                break;
            }
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) {
                seterr(err, errlen, "%s: out of memory reading it", path);
                rc = -ENOMEM;
                break;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                seterr(err, errlen, "%s: read error", path);
                rc = -EIO;
            }
            break;
        }
    }
    fclose(f);
    if (rc == 0)
        rc = ax_hostfile_parse(buf, len, path, out, err, errlen);
    free(buf);
    return rc;
}
