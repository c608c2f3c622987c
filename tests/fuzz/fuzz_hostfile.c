/* tests/fuzz/fuzz_hostfile.c - libFuzzer target for the hostfile parser
 * (topology/hostfile.c): ax_hostfile_parse on arbitrary bytes.  A crash or
 * sanitizer report is a bug, and so is any of these:
 *   - a success whose hosts break the documented invariants (empty or
 *     over-long names, slots outside 1..AX_HOST_SLOTS_MAX, slots above
 *     max_slots, total_slots not the sum, both xml and synthetic set);
 *   - a success that does not survive a round trip: the hosts written back
 *     as a hostfile parse to the same hosts;
 *   - a failure without a "fuzz.hosts" message, or that leaves *out set.
 * Threading: single thread.  Memory: nothing survives an iteration.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const ax_hostfile_t *hf)
{
    uint64_t sum = 0;
    if (hf->nhosts == 0 || !hf->hosts)
        abort();
    for (uint32_t i = 0; i < hf->nhosts; i++) {
        const ax_hostfile_host_t *h = &hf->hosts[i];
        size_t n = strnlen(h->name, sizeof h->name);
        if (n == 0 || n == sizeof h->name || strpbrk(h->name, " \t#="))
            abort();
        if (h->slots == 0 || h->slots > AX_HOST_SLOTS_MAX)
            abort();
        if (h->max_slots && h->slots > h->max_slots)
            abort();
        if (h->xml[0] && h->synthetic[0])
            abort();
        if (strnlen(h->xml, sizeof h->xml) == sizeof h->xml ||
            strnlen(h->synthetic, sizeof h->synthetic) == sizeof h->synthetic)
            abort();
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(hf->hosts[j].name, h->name))
                abort(); /* duplicates are refused */
        sum += h->slots;
    }
    if (sum != hf->total_slots || sum > AX_CLUSTER_NODES_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ax_hostfile_t *hf = (ax_hostfile_t *)1;
    char err[512];
    err[0] = '\0';
    int rc = ax_hostfile_parse((const char *)data, size, "fuzz.hosts", &hf, err, sizeof err);
    if (rc != 0) {
        if (hf != NULL || rc > 0 || strncmp(err, "fuzz.hosts", 10) != 0 ||
            !memchr(err, '\0', sizeof err))
            abort();
        return 0;
    }
    check(hf);

    /* Round trip: write the hosts back and parse them again. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    for (uint32_t i = 0; i < hf->nhosts; i++) {
        const ax_hostfile_host_t *h = &hf->hosts[i];
        fprintf(f, "%s", h->name);
        if (h->slots_given)
            fprintf(f, " slots=%u", h->slots);
        if (h->max_slots)
            fprintf(f, " max_slots=%u", h->max_slots);
        if (h->xml[0])
            fprintf(f, " # axon: xml=%s", h->xml);
        else if (h->synthetic[0])
            fprintf(f, " # axon: synthetic=%s", h->synthetic);
        fputc('\n', f);
    }
    fclose(f);
    ax_hostfile_t *again = NULL;
    if (ax_hostfile_parse(buf, len, "fuzz.hosts", &again, err, sizeof err) != 0)
        abort();
    if (again->nhosts != hf->nhosts || again->total_slots != hf->total_slots)
        abort();
    for (uint32_t i = 0; i < hf->nhosts; i++) {
        const ax_hostfile_host_t *a = &hf->hosts[i], *b = &again->hosts[i];
        if (strcmp(a->name, b->name) || a->slots != b->slots || a->max_slots != b->max_slots ||
            a->slots_given != b->slots_given || strcmp(a->xml, b->xml) ||
            strcmp(a->synthetic, b->synthetic) || b->line != i + 1)
            abort();
    }
    ax_hostfile_destroy(again);
    free(buf);
    ax_hostfile_destroy(hf);
    return 0;
}
