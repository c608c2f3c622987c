/* tests/unit/test_kv_store.c - one axon-kv shard's key space: the hash
 * table against a reference model, lazy and swept expiry, memory limits
 * (-OOM), and the RESP command layer with Redis's exact replies.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Before cmocka.h: blob.h's inline free() must stay libc's free. */
#include "examples/kv/store.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define NOW 1000000

static int setup(void **state)
{
    kv_store_t *s = calloc(1, sizeof(*s));
    if (!s) return -1;
    kv_store_init(s, 0, 0x1234);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    kv_store_t *s = *state;
    kv_store_fini(s);
    assert_int_equal(s->used, 0); /* every byte charged was given back */
    free(s);
    return 0;
}

static int put(kv_store_t *s, const char *k, const char *v, unsigned flags, int64_t at)
{
    return kv_store_set_copy(s, k, strlen(k), v, strlen(v), flags, at, NOW);
}

static void assert_value(kv_store_t *s, const char *k, const char *want, int64_t now)
{
    kv_blob_t *v;
    if (!want) {
        assert_int_equal(kv_store_get(s, k, strlen(k), now, &v), -ENOENT);
        return;
    }
    assert_int_equal(kv_store_get(s, k, strlen(k), now, &v), 0);
    assert_int_equal(v->len, strlen(want));
    assert_memory_equal(v->data, want, v->len);
}

static void set_then_get_returns_the_value_and_overwrite_replaces_it(void **state)
{
    kv_store_t *s = *state;
    assert_int_equal(put(s, "a", "1", 0, 0), 0);
    assert_value(s, "a", "1", NOW);
    assert_int_equal(put(s, "a", "two", 0, 0), 0);
    assert_value(s, "a", "two", NOW);
    assert_value(s, "b", NULL, NOW);
    assert_int_equal(kv_store_dbsize(s, NOW), 1);
}

static void set_nx_and_xx_follow_key_existence(void **state)
{
    kv_store_t *s = *state;
    assert_int_equal(put(s, "k", "x", KV_SET_XX, 0), 1); /* absent: XX refuses */
    assert_value(s, "k", NULL, NOW);
    assert_int_equal(put(s, "k", "x", KV_SET_NX, 0), 0);
    assert_int_equal(put(s, "k", "y", KV_SET_NX, 0), 1); /* present: NX refuses */
    assert_value(s, "k", "x", NOW);
    assert_int_equal(put(s, "k", "z", KV_SET_XX, 0), 0);
    assert_value(s, "k", "z", NOW);
}

static void del_and_exists_report_whether_the_key_was_there(void **state)
{
    kv_store_t *s = *state;
    put(s, "a", "1", 0, 0);
    assert_int_equal(kv_store_exists(s, "a", 1, NOW), 1);
    assert_int_equal(kv_store_del(s, "a", 1, NOW), 1);
    assert_int_equal(kv_store_del(s, "a", 1, NOW), 0);
    assert_int_equal(kv_store_exists(s, "a", 1, NOW), 0);
}

static void incrby_counts_from_zero_and_refuses_non_integers_and_overflow(void **state)
{
    kv_store_t *s = *state;
    int64_t v;
    assert_int_equal(kv_store_incrby(s, "n", 1, 5, NOW, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(kv_store_incrby(s, "n", 1, -7, NOW, &v), 0);
    assert_int_equal(v, -2);
    assert_value(s, "n", "-2", NOW);
    put(s, "t", "abc", 0, 0);
    assert_int_equal(kv_store_incrby(s, "t", 1, 1, NOW, &v), -KV_ENOTINT);
    put(s, "m", "9223372036854775807", 0, 0);
    assert_int_equal(kv_store_incrby(s, "m", 1, 1, NOW, &v), -KV_EOVERFLOW);
    assert_value(s, "m", "9223372036854775807", NOW);
}

static void incr_keeps_the_deadline(void **state)
{
    kv_store_t *s = *state;
    put(s, "n", "1", 0, NOW + 5000);
    int64_t v;
    assert_int_equal(kv_store_incrby(s, "n", 1, 1, NOW, &v), 0);
    assert_int_equal(kv_store_pttl(s, "n", 1, NOW), 5000);
}

static void expired_key_is_absent_on_access_and_removed(void **state)
{
    kv_store_t *s = *state;
    put(s, "e", "v", 0, NOW + 10);
    assert_value(s, "e", "v", NOW + 9);
    assert_int_equal(kv_store_dbsize(s, NOW + 10), 0); /* exact even before removal */
    assert_value(s, "e", NULL, NOW + 10);
    assert_int_equal(s->count, 0); /* lazy expiry removed it */
    assert_int_equal(s->expires, 0);
    assert_int_equal(s->expired_total, 1);
}

static void ttl_reports_missing_persistent_and_remaining(void **state)
{
    kv_store_t *s = *state;
    assert_int_equal(kv_store_pttl(s, "x", 1, NOW), -2);
    put(s, "x", "v", 0, 0);
    assert_int_equal(kv_store_pttl(s, "x", 1, NOW), -1);
    assert_int_equal(kv_store_expire_at(s, "x", 1, NOW + 1500, 0, NOW), 1);
    assert_int_equal(kv_store_pttl(s, "x", 1, NOW + 500), 1000);
    assert_int_equal(kv_store_expire_at(s, "nope", 4, NOW + 1500, 0, NOW), 0);
    /* SET without KEEPTTL clears the deadline */
    put(s, "x", "w", 0, 0);
    assert_int_equal(kv_store_pttl(s, "x", 1, NOW), -1);
}

static void expire_in_the_past_deletes_the_key(void **state)
{
    kv_store_t *s = *state;
    put(s, "x", "v", 0, 0);
    assert_int_equal(kv_store_expire_at(s, "x", 1, NOW, 0, NOW), 1);
    assert_value(s, "x", NULL, NOW);
}

static void sweep_removes_expired_keys_doing_bounded_work_per_call(void **state)
{
    kv_store_t *s = *state;
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "key:%d", i);
        put(s, k, "v", 0, i % 2 ? NOW + 100 : 0); /* half expire */
    }
    size_t cap = s->cap;
    size_t removed = kv_store_sweep(s, NOW + 100, 16);
    assert_true(removed <= 16);
    size_t calls = 1;
    while (s->count > 500) {
        removed = kv_store_sweep(s, NOW + 100, 16);
        assert_true(removed <= 16);
        calls++;
        assert_true(calls < 10 * cap); /* it makes progress */
    }
    assert_int_equal(s->count, 500);
    assert_int_equal(s->expires, 0);
    assert_int_equal(kv_store_sweep(s, NOW + 100, 16), 0);
    for (int i = 0; i < 1000; i += 2) {
        snprintf(k, sizeof(k), "key:%d", i);
        assert_value(s, k, "v", NOW + 100); /* the persistent half survived the shifts */
    }
}

static void writes_past_maxmemory_get_oom_while_deletes_still_work(void **state)
{
    (void)state;
    kv_store_t s;
    kv_store_init(&s, 4096, 7);
    char k[32], v[200];
    memset(v, 'x', sizeof(v) - 1);
    v[sizeof(v) - 1] = 0;
    int i, rc = 0;
    for (i = 0; i < 1000 && rc == 0; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        rc = put(&s, k, v, 0, 0);
    }
    assert_int_equal(rc, -KV_EOOM);
    for (i = 0, rc = 0; i < 1000 && rc == 0; i++) { /* fill the rest with tiny keys */
        snprintf(k, sizeof(k), "f%d", i);
        rc = put(&s, k, "1", 0, 0);
    }
    assert_int_equal(rc, -KV_EOOM);
    assert_true(s.used <= 4096);
    int64_t n;
    assert_int_equal(kv_store_incrby(&s, "fresh", 5, 1, NOW, &n), -KV_EOOM);
    assert_int_equal(kv_store_del(&s, "k0", 2, NOW), 1);
    assert_int_equal(put(&s, "k0", v, 0, 0), 0); /* room again */
    kv_out_t o;
    kv_out_init(&o);
    kv_arg_t mset[] = {{"MSET", 4, NULL}, {"a", 1, NULL}, {v, sizeof(v) - 1, NULL}};
    assert_int_equal(kv_store_exec(&s, 3, mset, NOW, &o), 0);
    const char oom[] = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_int_equal(o.len, sizeof(oom) - 1);
    assert_memory_equal(o.buf, oom, o.len);
    kv_out_fini(&o);
    kv_store_fini(&s);
    assert_int_equal(s.used, 0);
}

/* Random operations checked against a plain array: growth, probing and
 * backward-shift deletion must never lose or resurrect a key. */
static void table_matches_a_reference_model_under_random_churn(void **state)
{
    kv_store_t *s = *state;
    enum { NK = 3000 };
    static int model[NK]; /* -1 absent, else value */
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    printf("seed %llu\n", (unsigned long long)seed);
    for (int i = 0; i < NK; i++) model[i] = -1;
    char k[32], v[32];
    for (int op = 0; op < 200000; op++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        int key = (int)(seed % NK);
        int kind = (int)((seed >> 20) % 3);
        int kl = snprintf(k, sizeof(k), "k%d", key);
        if (kind == 0) {
            int vl = snprintf(v, sizeof(v), "%d", op);
            assert_int_equal(kv_store_set_copy(s, k, (size_t)kl, v, (size_t)vl, 0, 0, NOW), 0);
            model[key] = op;
        } else if (kind == 1) {
            assert_int_equal(kv_store_del(s, k, (size_t)kl, NOW), model[key] >= 0);
            model[key] = -1;
        } else {
            kv_blob_t *b;
            int rc = kv_store_get(s, k, (size_t)kl, NOW, &b);
            if (model[key] < 0) {
                assert_int_equal(rc, -ENOENT);
            } else {
                assert_int_equal(rc, 0);
                int vl = snprintf(v, sizeof(v), "%d", model[key]);
                assert_int_equal(b->len, (size_t)vl);
                assert_memory_equal(b->data, v, b->len);
            }
        }
    }
    size_t live = 0;
    for (int i = 0; i < NK; i++) live += model[i] >= 0;
    assert_int_equal(kv_store_dbsize(s, NOW), live);
}

static void big_value_blob_moves_into_the_store_and_outlives_an_overwrite(void **state)
{
    kv_store_t *s = *state;
    kv_blob_t *big = kv_blob_new(100000);
    memset(big->data, 'b', big->len);
    kv_arg_t argv[] = {{"SET", 3, NULL}, {"big", 3, NULL}, {big->data, big->len, big}};
    kv_out_t o;
    kv_out_init(&o);
    assert_int_equal(kv_store_exec(s, 3, argv, NOW, &o), 0);
    assert_null(argv[2].blob); /* taken: the store holds it now */
    kv_blob_t *got;
    assert_int_equal(kv_store_get(s, "big", 3, NOW, &got), 0);
    assert_ptr_equal(got, big); /* same memory: not copied */
    kv_blob_t *held = kv_blob_ref(got); /* a connection still sending it */
    assert_int_equal(put(s, "big", "small", 0, 0), 0);
    assert_int_equal(held->len, 100000);
    assert_int_equal(held->data[99999], 'b');
    kv_blob_unref(held);
    kv_out_fini(&o);
}

static void set_copy_reuses_an_unshared_value_in_place_only(void **state)
{
    kv_store_t *s = *state;
    put(s, "k", "aaaa", 0, 0);
    kv_blob_t *b1;
    kv_store_get(s, "k", 1, NOW, &b1);
    put(s, "k", "bbbb", 0, 0);
    kv_blob_t *b2;
    kv_store_get(s, "k", 1, NOW, &b2);
    assert_ptr_equal(b1, b2);
    kv_blob_t *held = kv_blob_ref(b2);
    put(s, "k", "cccc", 0, 0);
    kv_blob_t *b3;
    kv_store_get(s, "k", 1, NOW, &b3);
    assert_ptr_not_equal(b3, held);
    assert_memory_equal(held->data, "bbbb", 4); /* the reader's bytes did not change */
    kv_blob_unref(held);
}

/* ---- RESP layer ---------------------------------------------------------- */

/* Run a command given as a space-separated string; compare the reply. */
static void run(kv_store_t *s, const char *line, const char *want)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", line);
    kv_arg_t argv[16];
    uint32_t argc = 0;
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " "))
        argv[argc++] = (kv_arg_t){tok, strlen(tok), NULL};
    kv_out_t o;
    kv_out_init(&o);
    assert_int_equal(kv_store_exec(s, argc, argv, NOW, &o), 0);
    if (o.len != strlen(want) || memcmp(o.buf, want, o.len) != 0)
        fail_msg("'%s': expected %s got %.*s", line, want, (int)o.len, o.buf);
    kv_out_fini(&o);
}

static void exec_answers_each_command_as_redis_does(void **state)
{
    kv_store_t *s = *state;
    run(s, "SET foo bar", "+OK\r\n");
    run(s, "get foo", "$3\r\nbar\r\n");
    run(s, "GET nope", "$-1\r\n");
    run(s, "SET foo baz NX", "$-1\r\n");
    run(s, "SET new v XX", "$-1\r\n");
    run(s, "SET foo v NX XX", "-ERR syntax error\r\n");
    run(s, "SET foo v EX 10 PX 5", "-ERR syntax error\r\n");
    run(s, "SET foo v EX 0", "-ERR invalid expire time in 'set' command\r\n");
    run(s, "SET foo v EX abc", "-ERR value is not an integer or out of range\r\n");
    run(s, "SET foo v EX 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n");
    run(s, "SET foo v BOGUS", "-ERR syntax error\r\n");
    run(s, "SET t v EX 10", "+OK\r\n");
    run(s, "TTL t", ":10\r\n");
    run(s, "PTTL t", ":10000\r\n");
    run(s, "SET t v PX 1499", "+OK\r\n");
    run(s, "TTL t", ":1\r\n");
    run(s, "TTL foo", ":-1\r\n");
    run(s, "TTL nope", ":-2\r\n");
    run(s, "EXPIRE foo 100", ":1\r\n");
    run(s, "TTL foo", ":100\r\n");
    run(s, "EXPIRE nope 100", ":0\r\n");
    run(s, "EXPIRE foo x", "-ERR value is not an integer or out of range\r\n");
    run(s, "EXPIRE foo 1 BOGUS", "-ERR Unsupported option BOGUS\r\n");
    run(s, "INCR n", ":1\r\n");
    run(s, "INCRBY n 10", ":11\r\n");
    run(s, "DECR n", ":10\r\n");
    run(s, "DECRBY n 3", ":7\r\n");
    run(s, "INCRBY n x", "-ERR value is not an integer or out of range\r\n");
    run(s, "INCR foo", "-ERR value is not an integer or out of range\r\n");
    run(s, "MSET a 1 b 2", "+OK\r\n");
    run(s, "MSET a 1 b", "-ERR wrong number of arguments for 'mset' command\r\n");
    run(s, "MGET a nope b", "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
    run(s, "EXISTS a b nope a", ":3\r\n");
    run(s, "DEL a nope", ":1\r\n");
    run(s, "DBSIZE", ":4\r\n"); /* foo t n b */
    run(s, "GET", "-ERR wrong number of arguments for 'get' command\r\n");
    run(s, "FLUSHALL", "+OK\r\n");
    run(s, "DBSIZE", ":0\r\n");
    run(s, "FOO bar baz", "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n");
}

/* Issue 10, item 18: SET options and EXPIRE as Redis 7 answers them.  Each
 * expected reply is what redis-server 7.0.15 gave for the same command
 * (tests/kv/test_kv_diff.py checks the same against a live redis-server). */
static void set_and_expire_follow_redis_7_options_and_limits(void **state)
{
    kv_store_t *s = *state;
    const char *invalid_set = "-ERR invalid expire time in 'set' command\r\n";
    /* a repeated EX (or PX) is allowed: the last one wins */
    run(s, "SET k v EX 10 EX 20", "+OK\r\n");
    run(s, "TTL k", ":20\r\n");
    run(s, "SET k v PX 5000 PX 9000", "+OK\r\n");
    run(s, "PTTL k", ":9000\r\n");
    run(s, "SET k v EX abc EX 10", "+OK\r\n"); /* the first value is never parsed */
    run(s, "TTL k", ":10\r\n");
    run(s, "SET k v EX 10 EX abc", "-ERR value is not an integer or out of range\r\n");
    run(s, "SET k v NX NX", "$-1\r\n");
    run(s, "SET k v XX XX", "+OK\r\n");
    run(s, "SET k v KEEPTTL KEEPTTL", "+OK\r\n");
    /* combinations Redis refuses */
    run(s, "SET k v EX 10 PX 20", "-ERR syntax error\r\n");
    run(s, "SET k v KEEPTTL EX 5", "-ERR syntax error\r\n");
    run(s, "SET k v EX 5 KEEPTTL", "-ERR syntax error\r\n");
    run(s, "SET k v XX XX NX", "-ERR syntax error\r\n");
    run(s, "SET k v EX", "-ERR syntax error\r\n");
    /* precedence: every option is parsed before the TTL value */
    run(s, "SET k v EX abc NX XX", "-ERR syntax error\r\n");
    run(s, "SET k v EX 0 BADOPT", "-ERR syntax error\r\n");
    run(s, "SET k v EX -5 NX", invalid_set);
    /* limits on Redis's Unix clock, not on the (small) monotonic one */
    run(s, "SET k v PX 9223372036854775807", invalid_set);
    run(s, "SET k v PX 9223372036850000000", invalid_set); /* 292 My from the epoch: too far now */
    run(s, "SET k v EX 9223372036854775", invalid_set);
    run(s, "SET k v EX 9223372036854776", invalid_set);
    run(s, "SET k v EX 9223372036854", "+OK\r\n"); /* 292 thousand years: fine */
    /* EXPIRE: large negative seconds overflow the milliseconds */
    run(s, "SET k v", "+OK\r\n");
    run(s, "EXPIRE k -9223372036854776", "-ERR invalid expire time in 'expire' command\r\n");
    run(s, "EXPIRE k 9223372036854776", "-ERR invalid expire time in 'expire' command\r\n");
    run(s, "EXPIRE k 9223372036854775", "-ERR invalid expire time in 'expire' command\r\n");
    run(s, "PEXPIRE k 9223372036854775807", "-ERR invalid expire time in 'pexpire' command\r\n");
    run(s, "PEXPIRE k 9223372036850000000", "-ERR invalid expire time in 'pexpire' command\r\n");
    run(s, "EXISTS k", ":1\r\n"); /* none of those touched it */
    run(s, "EXPIRE k 9223372036854", ":1\r\n");
    run(s, "EXPIRE k -9223372036854775", ":1\r\n"); /* in range and past: deleted */
    run(s, "EXISTS k", ":0\r\n");
    run(s, "SET k v", "+OK\r\n");
    run(s, "PEXPIRE k -9223372036854775808", ":1\r\n");
    run(s, "EXISTS k", ":0\r\n");
    /* EXPIRE NX | XX | GT | LT */
    run(s, "SET k v", "+OK\r\n");
    run(s, "EXPIRE k 100 XX", ":0\r\n"); /* no deadline yet */
    run(s, "EXPIRE k 100 GT", ":0\r\n"); /* none counts as infinite */
    run(s, "EXPIRE k 100 NX", ":1\r\n");
    run(s, "EXPIRE k 200 NX", ":0\r\n");
    run(s, "TTL k", ":100\r\n");
    run(s, "EXPIRE k 50 GT", ":0\r\n");
    run(s, "EXPIRE k 150 GT", ":1\r\n");
    run(s, "EXPIRE k 160 LT", ":0\r\n");
    run(s, "EXPIRE k 120 LT", ":1\r\n");
    run(s, "PEXPIRE k 90000 XX LT", ":1\r\n");
    run(s, "PTTL k", ":90000\r\n");
    run(s, "EXPIRE k 0 GT", ":0\r\n");
    run(s, "EXPIRE nope 10 NX", ":0\r\n");
    run(s, "SET p v", "+OK\r\n");
    run(s, "EXPIRE p 100 LT", ":1\r\n"); /* no deadline: any deadline is less */
    run(s, "SET p v", "+OK\r\n");
    run(s, "EXPIRE p -1 LT", ":1\r\n"); /* ... and a past one deletes */
    run(s, "EXISTS p", ":0\r\n");
    run(s, "EXPIRE k 10 NX XX", "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    run(s, "EXPIRE k 10 NX GT", "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    run(s, "EXPIRE k 10 GT LT", "-ERR GT and LT options at the same time are not compatible\r\n");
    run(s, "EXPIRE k abc FOO", "-ERR Unsupported option FOO\r\n"); /* options before the amount */
    run(s, "EXPIRE k abc NX", "-ERR value is not an integer or out of range\r\n");
    run(s, "EXPIRE k 10 xx gt", ":0\r\n"); /* case-insensitive; 10 s is not later than 90 s */
    run(s, "EXPIRE k 100 xx gt", ":1\r\n"); /* XX with GT is allowed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(set_then_get_returns_the_value_and_overwrite_replaces_it, setup, teardown),
        cmocka_unit_test_setup_teardown(set_nx_and_xx_follow_key_existence, setup, teardown),
        cmocka_unit_test_setup_teardown(del_and_exists_report_whether_the_key_was_there, setup, teardown),
        cmocka_unit_test_setup_teardown(incrby_counts_from_zero_and_refuses_non_integers_and_overflow, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(incr_keeps_the_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_key_is_absent_on_access_and_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(ttl_reports_missing_persistent_and_remaining, setup, teardown),
        cmocka_unit_test_setup_teardown(expire_in_the_past_deletes_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(sweep_removes_expired_keys_doing_bounded_work_per_call, setup, teardown),
        cmocka_unit_test(writes_past_maxmemory_get_oom_while_deletes_still_work),
        cmocka_unit_test_setup_teardown(table_matches_a_reference_model_under_random_churn, setup, teardown),
        cmocka_unit_test_setup_teardown(big_value_blob_moves_into_the_store_and_outlives_an_overwrite, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(set_copy_reuses_an_unshared_value_in_place_only, setup, teardown),
        cmocka_unit_test_setup_teardown(exec_answers_each_command_as_redis_does, setup, teardown),
        cmocka_unit_test_setup_teardown(set_and_expire_follow_redis_7_options_and_limits, setup, teardown),
    };
    return cmocka_run_group_tests_name("kv/store", tests, NULL, NULL);
}
