/* engine/fault.c - the fault-signal report: a SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL or SIGABRT on a worker still ends the process, but first says on
 * stderr which worker, actor, behaviour, message type and sender it hit.
 *
 * What is contained and what is not (docs/failure.md): nothing.  A fault in
 * C means memory may be corrupt; the process ends with the signal's default
 * action (a core dump where enabled).  The report only makes the post-mortem
 * short.
 *
 * Threading.  The handlers are process-wide: installed when the first engine
 * with scheduler.fault_report = on starts, restored when the last one is
 * destroyed (a mutex and a reference count; only if nobody replaced ours in
 * between).  Each worker thread records itself in a thread-local (initial-
 * exec TLS, so reading it from a handler is a plain load, no allocation)
 * and runs the handler on its own alternate stack, so a stack overflow in a
 * behaviour is reported too.
 *
 * The handler is async-signal-safe: it reads its own thread's worker fields
 * (written by this thread: no race), formats into a stack buffer
 * (engine/symbol.h), calls write(2), and names the behaviour through
 * ax__symbolize (open/pread/close only).  Then it chains: to the handler
 * that was installed before ours if it was a function (sanitizers, crash
 * reporters), else it restores the default action and re-raises the signal,
 * which is delivered when the handler returns (the signal is blocked while
 * its handler runs).  A fault on a thread that is not a worker is not
 * reported; it is only chained.
 *
 * Memory: each worker's alternate stack is an mmap with a guard page,
 * unmapped when the worker exits.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/engine_internal.h"
#include "engine/symbol.h"

#define ALTSTACK_BYTES (64u * 1024u)

static const int SIGS[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
#define NSIGS (sizeof SIGS / sizeof SIGS[0])

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned g_refs;
static struct sigaction g_old[NSIGS];

static _Thread_local ax_worker_t *tls_worker __attribute__((tls_model("initial-exec")));
static _Thread_local volatile sig_atomic_t tls_reported __attribute__((tls_model("initial-exec")));

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
    }
}

static void write_all(const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(STDERR_FILENO, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void write_report(int sig, const siginfo_t *si, ax_worker_t *w)
{
    char text[1024], sym[256];
    ax_sbuf_t b;
    ax__sb_init(&b, text, sizeof text);
    ax__sb_str(&b, "axon: fatal signal ");
    ax__sb_str(&b, sig_name(sig));
    if (si && sig != SIGABRT) {
        ax__sb_str(&b, " (fault address ");
        ax__sb_hex(&b, (uint64_t)(uintptr_t)si->si_addr);
        ax__sb_str(&b, ")");
    }
    ax__sb_str(&b, " on worker ");
    ax__sb_dec(&b, w->id);
    /* Our own thread's fields: this thread wrote them, no race. */
    ax_actor_t *a = w->cur;
    const ax_msg_t *m = w->head.msg;
    if (!a) {
        ax__sb_str(&b, " outside any behaviour (in the engine itself or an io/timer callback)");
    } else {
        ax__sb_str(&b, " in actor ");
        ax__sb_ref(&b, w->head.self);
        const void *fn = (const void *)(uintptr_t)a->fn;
        ax__sb_str(&b, m ? ", behaviour " : ", init or fini of behaviour ");
        ax__symbolize(fn, sym, sizeof sym);
        ax__sb_str(&b, sym);
        ax__sb_str(&b, " at ");
        ax__sb_hex(&b, (uint64_t)(uintptr_t)fn);
        if (m) {
            ax__sb_str(&b, ", message type ");
            ax__sb_dec(&b, m->type);
            ax__sb_str(&b, " from ");
            if (m->from)
                ax__sb_ref(&b, m->from);
            else
                ax__sb_str(&b, "outside the engine");
        }
    }
    ax__sb_str(&b, "; the process ends now: C cannot contain a fault (see docs/failure.md)\n");
    write_all(text, b.len);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    size_t idx = 0;
    while (idx < NSIGS && SIGS[idx] != sig)
        idx++;
    ax_worker_t *w = tls_worker;
    if (w && !tls_reported) {
        tls_reported = 1; /* a chained handler that returns must not loop us */
        write_report(sig, si, w);
    }
    errno = saved;
    if (idx < NSIGS) {
        const struct sigaction *old = &g_old[idx];
        if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
            old->sa_sigaction(sig, si, uc);
            return;
        }
        if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL &&
            old->sa_handler != SIG_IGN) {
            old->sa_handler(sig);
            return;
        }
    }
    /* Default action: delivered again as soon as we return (it is blocked
     * while we run); a hardware fault would also recur on the instruction. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

int ax__fault_engine_init(ax_engine_t *eng)
{
    if (eng->fault_installed || eng->cfg.fault_report == AX_FAULT_REPORT_OFF)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&g_mu);
    if (g_refs == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < NSIGS; i++)
            if (sigaction(SIGS[i], &sa, &g_old[i]) < 0) {
                rc = -errno;
                while (i--)
                    sigaction(SIGS[i], &g_old[i], NULL);
                break;
            }
    }
    if (!rc) {
        g_refs++;
        eng->fault_installed = true;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void ax__fault_engine_fini(ax_engine_t *eng)
{
    if (!eng->fault_installed)
        return;
    pthread_mutex_lock(&g_mu);
    if (--g_refs == 0)
        for (size_t i = 0; i < NSIGS; i++) {
            struct sigaction cur;
            /* Put the old handler back only where ours is still in place:
             * a handler installed after ours stays. */
            if (sigaction(SIGS[i], NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
                cur.sa_sigaction == on_fault)
                sigaction(SIGS[i], &g_old[i], NULL);
        }
    eng->fault_installed = false;
    pthread_mutex_unlock(&g_mu);
}

void ax__fault_worker_enter(ax_worker_t *w)
{
    if (!w->eng->fault_installed)
        return;
    tls_worker = w;
    tls_reported = 0;
    /* Keep an alternate stack somebody (a sanitizer) already set up if it
     * is big enough; otherwise ours, with a guard page below it. */
    if (sigaltstack(NULL, &w->altstack_old) == 0 && !(w->altstack_old.ss_flags & SS_DISABLE) &&
        w->altstack_old.ss_size >= ALTSTACK_BYTES)
        return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = ALTSTACK_BYTES + page;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        return; /* no overflow report, everything else still works */
    mprotect(p, page, PROT_NONE);
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = (char *)p + page;
    ss.ss_size = ALTSTACK_BYTES;
    if (sigaltstack(&ss, NULL) < 0) {
        munmap(p, len);
        return;
    }
    w->altstack = p;
    w->altstack_len = len;
}

void ax__fault_worker_leave(ax_worker_t *w)
{
    if (!w->eng->fault_installed)
        return;
    tls_worker = NULL;
    if (!w->altstack)
        return;
    sigaltstack(&w->altstack_old, NULL); /* the previous one, or disabled */
    munmap(w->altstack, w->altstack_len);
    w->altstack = NULL;
}
