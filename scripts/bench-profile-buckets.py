#!/usr/bin/env python3
"""Buckets the samples of `perf script` output (from scripts/bench-profile) by
what wxcube was doing: each sample goes to the first rule whose pattern matches
any frame of its stack (exclusive, sums to 100 %); the inclusive column counts
every rule that matches. Also prints per-thread self costs.

    perf script -i perf.data --no-inline | scripts/bench-profile-buckets.py -
"""
import re, sys, collections
samples = []  # (comm, [syms leaf-first])
cur = None
src = sys.stdin if len(sys.argv) < 2 or sys.argv[1] == '-' else open(sys.argv[1], errors='replace')
for line in src:
    if not line.strip():
        if cur: samples.append(cur); cur = None
        continue
    if not line.startswith('\t') and not line.startswith(' '):
        comm = line.split()[0]
        cur = (comm, [])
    elif cur is not None:
        parts = line.strip().split(' ', 1)
        sym = parts[1] if len(parts) > 1 else parts[0]
        sym = re.sub(r'\+0x[0-9a-f]+ \(.*\)$', '', sym)
        sym = re.sub(r' \(.*\)$', '', sym)
        cur[1].append(sym)
if cur: samples.append(cur)
N = len(samples)
print("samples", N)
th = collections.Counter(s[0] for s in samples)
print("threads:", {k: f"{100*v/N:.1f}%" for k, v in th.items()})

def has(stack, pat): return any(re.search(pat, f) for f in stack)
rules = [
 ("SQLite BEGIN/COMMIT (sqlite3_exec: WAL frames, checkpoints, fsync)", r'^sqlite3_exec$'),
 ("SQLite prepare", r'sqlite3_prepare|sqlite3LockAndPrepare'),
 ("SQLite executing upserts (sqlite3_step)", r'^sqlite3_step$'),
 ("sqlx: reset/bind on SQLite thread", r'sqlite3_(bind|reset|clear_bindings)|VirtualStatement::reset'),
 ("JSON parse into serde_json::Value", r'serde_json::de::from_trait|impl serde_core::de::Deserialize for serde_json::value::Value'),
 ("drop serde_json::Value trees", r'drop_in_place<serde_json::value::Value>|drop_in_place<alloc::collections::btree::map::IntoIter<alloc::string::String,serde_json'),
 ("normalise (wxcube::endpoint::*)", r'^wxcube::endpoint::'),
 ("sqlx binding (Query::bind, Arguments::add, encode)", r'sqlx_core::query::Query<.*>::bind|Arguments>::add|encode_by_ref'),
 ("rows built (wxcube::store::rows)", r'^wxcube::store::rows'),
 ("tracing (log events)", r'^tracing_core::event::Event::dispatch|tracing_subscriber'),
 ("HTTP client (reqwest/hyper, TCP send/recv)", r'^reqwest::|^<reqwest::|^hyper::|^<hyper::|tcp_sendmsg|tcp_recvmsg'),
 ("channel to sqlx thread (flume)", r'flume::'),
 ("runtime park/wake (tokio, futex, epoll)", r'park|epoll_wait|futex'),
 ("other wxcube::store", r'^wxcube::store'),
 ("other wxcube", r'^wxcube::|^<wxcube::'),
]
excl = collections.Counter(); incl = collections.Counter()
for comm, st in samples:
    hit = None
    for name, pat in rules:
        if has(st, pat):
            incl[name] += 1
            if hit is None: hit = name
    excl[hit or f"other ({comm})"] += 1
print("\nexclusive buckets (first rule that matches the stack):")
for k, v in excl.most_common(): print(f"  {100*v/N:5.1f}%  {k}")
print("\ninclusive (any frame matches):")
for name, _ in rules: print(f"  {100*incl[name]/N:5.1f}%  {name}")
alloc = sum(1 for c, st in samples if st and re.search(r'^(malloc|_int_malloc|_int_free|cfree|free|realloc|malloc_consolidate|unlink_chunk|_int_realloc|__libc_malloc|__libc_free|malloc_trim)', st[0]))
print(f"\nallocator self (leaf in glibc malloc/free): {100*alloc/N:.1f}%")
kern = sum(1 for c, st in samples if st and re.match(r'^(finish_task_switch|_raw_spin|__schedule|do_syscall|entry_SYSCALL|irqentry)', st[0]))
print(f"kernel scheduler/irq-restore leaf: {100*kern/N:.1f}%")
# per-thread self top
for comm in th:
    c = collections.Counter(st[0] for cm, st in samples if cm == comm and st)
    print(f"\n{comm}: top self")
    for k, v in c.most_common(12): print(f"  {100*v/N:5.2f}%  {k[:110]}")
