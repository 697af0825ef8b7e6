#!/usr/bin/env python3
"""bench/peers/report.py: the summary of bench/side-by-side.

    report.py WORK OUT META_JSON CONNS SIZE DURATION WARMUP WORKERS RINGLOAD PREFLIGHT TAG...

Each TAG is SERVER.RATE.REPEAT; WORK/run.TAG.json is what measure.py wrote
and WORK/run.TAG.status what the script recorded ("ran MEASURE_RC DIED" or
"start_failed"). RATE 0 is the idle run (memory only). Writes OUT (JSON),
prints a table, exits 1 if a run failed.

Verdicts: "ok" (ringload exit 0 and every check below); "unchecked_by_ringload"
(nchan: ringload v0 counts its 201/202 publish answers as failed and its
TIME:SEQ ids as id mismatches, so it exits 1 and its end-of-run loss check
is void, but everything else passed, including deliveries == published x
subscribers); "failed" otherwise, with the problems listed.
"""
import json
import os
import sys


def load(work, tag, conns):
    server, rate, rep = tag.split('.', 2)
    base = f'{work}/run.{tag}'
    st = open(base + '.status').read().split() if os.path.exists(base + '.status') else ['missing']
    r = {'server': server, 'rate': float(rate), 'kind': 'idle' if float(rate) == 0 else 'publish',
         'repeat': int(rep), 'status': st[0]}
    if st[0] != 'ran':
        r['verdict'] = 'server_did_not_start'
        r['problems'], r['caveats'] = ['server did not start'], []
        return r
    r['measure_py_exit'], r['server_died'] = int(st[1]), st[2] == '1'
    m = json.load(open(base + '.json')) if os.path.exists(base + '.json') else {}
    rl = m.get('ringload') or {}
    cw = m.get('cpu_window') or {}
    r['ringload_exit'] = m.get('ringload_exit')
    r['ringload_timed_out'] = m.get('ringload_timed_out')
    r['ringload_command'] = ' '.join(m.get('command', []))
    r['ringload_summary'] = m.get('ringload_stdout')
    r['ringload_stderr_tail'] = m.get('ringload_stderr_tail')
    for k in ('subscribers', 'published', 'acknowledged', 'unanswered', 'deliveries', 'deliveries_per_s', 'lost',
              'duplicated_or_reordered', 'id_mismatches', 'gaps_signalled', 'errors', 'latency_ms',
              'server_bytes_per_connection', 'ringload_cpu_s', 'wall_s'):
        r[k] = rl.get(k)
    r['ringload_says_server_died'] = rl.get('server_died')
    r['cpu_window'] = cw or None
    ms = m.get('memory_subscribed') or {}
    r['memory'] = {
        'sampled_at': ms.get('at'),
        'connections': ms.get('connections'),
        'before_kb': (m.get('memory_before') or {}).get('total_kb'),
        'subscribed_kb': ms.get('total_kb'),
        'per_connection_B': m.get('memory_per_connection_B'),
    }
    sp = f'{base}.stats.json'
    if os.path.exists(sp):
        try:
            r['server_stats_total'] = json.load(open(sp)).get('total')
        except ValueError:
            pass
    errs = rl.get('errors') or {}
    pub, subs, dl = rl.get('published'), rl.get('subscribers'), rl.get('deliveries')
    # Every subscriber was there before the first publish, so each should
    # have every published message exactly once.
    r['expected_deliveries'] = pub * subs if pub is not None and subs is not None else None
    r['all_delivered_by_count'] = bool(rl) and subs == conns and dl == r['expected_deliveries']
    problems, caveats = [], []
    if not rl:
        problems.append('no ringload result')
    if m.get('ringload_timed_out'):
        problems.append('ringload timed out')
    if r['server_died'] or rl.get('server_died'):
        problems.append('server died')
    if rl and subs != conns:
        problems.append(f'{subs} of {conns} subscribed')
    if rl and (rl.get('lost') or rl.get('duplicated_or_reordered')):
        problems.append(f"lost {rl.get('lost')}, duplicated/reordered {rl.get('duplicated_or_reordered')}")
    for k in ('connect_failed', 'refused', 'bad_status', 'protocol', 'closed_by_server'):
        if errs.get(k):
            problems.append(f'{k} {errs[k]}')
    if rl and dl is not None and not r['all_delivered_by_count']:
        problems.append(f"{r['expected_deliveries'] - dl} of {r['expected_deliveries']} deliveries "
                        f"(published {pub} x subscribers {subs}) had not arrived when ringload stopped "
                        f"(its drain ends 0.5 s after the last publish once every publish is answered, "
                        f"at most 5 s): late or lost, ringload can't tell; latency percentiles leave them out")
    if r['kind'] == 'publish' and not cw.get('deliveries'):
        problems.append('no measure window (no CPU per delivery)')
    if r['kind'] == 'idle' and not (r['memory']['per_connection_B'] or {}).get('Pss'):
        problems.append('no memory sample with every subscriber subscribed')
    answers = (rl.get('acknowledged') or 0) + (errs.get('publish_failed') or 0)
    if errs.get('publish_failed'):
        if server == 'nchan' and not rl.get('acknowledged'):
            caveats.append(f"ringload v0 counted nchan's {errs['publish_failed']} publish answers (201/202) "
                           "as failed publishes: its end-of-run loss check had nothing acknowledged to check")
        else:
            problems.append(f"publish_failed {errs['publish_failed']}")
    if rl and pub is not None and answers < pub:
        problems.append(f'{pub - answers} of {pub} publish answers had not come back when ringload exited')
    if rl.get('id_mismatches'):
        if server == 'nchan':
            caveats.append(f"ringload v0 read nchan's TIME:SEQ ids as decimal numbers: "
                           f"{rl['id_mismatches']} id mismatches")
        else:
            problems.append(f"id mismatches {rl['id_mismatches']}")
    r['problems'], r['caveats'] = problems, caveats
    r['verdict'] = 'failed' if problems else ('unchecked_by_ringload' if caveats else 'ok')
    return r


def main():
    work, out, meta, conns, size, duration, warmup, workers, ringload, preflight = sys.argv[1:11]
    tags = sys.argv[11:]
    conns = int(conns)
    R = [load(work, t, conns) for t in tags]

    def best(server, rate):
        """The run of SERVER at RATE in which other processes took the least CPU."""
        c = [x for x in R if x['server'] == server and x['rate'] == rate and x['verdict'] != 'server_did_not_start']
        if not c:
            return None
        return min(c, key=lambda x: ((x.get('cpu_window') or {}).get('other_s') or 0))

    def ratio(a, b, f):
        try:
            va, vb = f(a), f(b)
            return round(va / vb, 3) if va is not None and vb else None
        except (TypeError, KeyError):
            return None

    comparison = []
    ia, ib = best('ringcast', 0.0), best('nchan', 0.0)
    mem = lambda x: x['memory']['per_connection_B']['Pss']
    for rate in sorted({x['rate'] for x in R if x['kind'] == 'publish'}):
        a, b = best('ringcast', rate), best('nchan', rate)
        row = {'rate': rate, 'ringcast_run': a and a['repeat'], 'nchan_run': b and b['repeat'],
               'ringcast_verdict': a and a['verdict'], 'nchan_verdict': b and b['verdict']}
        if a and b:
            row['ratio_ringcast_over_nchan'] = {
                'latency_p50': ratio(a, b, lambda x: x['latency_ms']['p50']),
                'latency_p99': ratio(a, b, lambda x: x['latency_ms']['p99']),
                'latency_max': ratio(a, b, lambda x: x['latency_ms']['max']),
                'server_us_per_delivery': ratio(a, b, lambda x: x['cpu_window']['server_us_per_delivery']),
                'server_user_us_per_delivery': ratio(a, b, lambda x: x['cpu_window']['server_user_us_per_delivery']),
                'server_pss_per_idle_connection': ratio(ia, ib, mem) if ia and ib else None,
            }
        comparison.append(row)

    res = {
        'benchmark': 'side-by-side',
        'machine': json.loads(meta),
        'command': os.environ.get('SBS_COMMAND') or 'bash bench/side-by-side',
        'scenario': {'sse_subscribers': conns, 'channels': 1, 'publishers': 1, 'message_size': int(size),
                     'rates': sorted({x['rate'] for x in R if x['kind'] == 'publish'}),
                     'warmup_s': float(warmup), 'duration_s': float(duration)},
        'servers': {
            'ringcast': f'build/ringcast --port 0 --bind 127.0.0.1 --workers {workers}',
            'nchan': 'nginx 1.22.1 + libnginx-mod-nchan 1.3.6 (Debian bookworm), bench/peers/nchan.conf, '
                     'worker_processes 2',
        },
        'client': ringload,
        'nchan_preflight_publish_status': preflight or None,
        'how': {
            'cpu': "utime+stime of the server's processes (/proc/PID/stat; nginx: master + workers) from right "
                   "after ringload's first 'measure' progress line to its exit, / ringload's deliveries in that "
                   "window",
            'memory': "idle run (nothing published): (summed Pss of the server's processes once every subscriber "
                      "is subscribed - before ringload started) / connections; Pss counts nginx's shared "
                      "memory zone once",
            'exactness': "ringload's in-stream checks (loss, duplicates, order) plus deliveries == published x "
                         "subscribers",
            'headline': 'per server and rate, the run in which other processes took the least CPU',
        },
        'comparison': comparison,
        'runs': R,
    }
    with open(out, 'w') as f:
        json.dump(res, f, indent=2)
        f.write('\n')

    def g(x, *ks, fmt='{:.1f}'):
        try:
            for k in ks:
                x = x[k]
            return fmt.format(x) if x is not None else '-'
        except (KeyError, TypeError, ValueError):
            return '-'

    mm = res['machine']
    print(f"\nside-by-side ({mm['date']}, kernel {mm['kernel']}, {mm['cpus']} CPUs shared by ringload and the server)")
    print(f"  {conns} SSE subscribers, 1 channel, {size} B, warmup {warmup} s + {duration} s measured; {ringload}")
    for x in R:
        if x['kind'] != 'idle':
            continue
        pc = x.get('memory', {}).get('per_connection_B') or {}
        print(f"  {x['server']:8} idle: {g(pc, 'Pss', fmt='{:.0f}')} B/connection (Pss; RSS {g(pc, 'VmRSS', fmt='{:.0f}')})"
              f" over {g(x, 'memory', 'connections', fmt='{:d}')} connections  {x['verdict']}"
              + (f" (ringload exit {x.get('ringload_exit')})" if x.get('ringload_exit') else ''))
        for p in x.get('problems', []):
            print(f"      problem: {p}")
    print(f"  {'server':8} {'msg/s':>5} {'deliveries':>10} {'lost/dup':>9} {'p50':>7} {'p99':>7} {'max':>7} ms "
          f"{'us/deliv':>8} {'(user)':>6} {'CPU-s srv/cli/oth':>18}  verdict")
    for x in R:
        if x['kind'] == 'idle':
            continue
        cw = x.get('cpu_window') or {}
        print(f"  {x['server']:8} {x['rate']:5g} {g(x, 'deliveries', fmt='{:d}'):>10} "
              f"{g(x, 'lost', fmt='{:d}') + '/' + g(x, 'duplicated_or_reordered', fmt='{:d}'):>9} "
              f"{g(x, 'latency_ms', 'p50'):>7} {g(x, 'latency_ms', 'p99'):>7} {g(x, 'latency_ms', 'max'):>7}    "
              f"{g(cw, 'server_us_per_delivery', fmt='{:.2f}'):>8} {g(cw, 'server_user_us_per_delivery', fmt='{:.2f}'):>6} "
              f"{g(cw, 'server_s') + '/' + g(cw, 'client_s') + '/' + g(cw, 'other_s'):>18}  {x['verdict']}"
              + (f" (ringload exit {x.get('ringload_exit')})" if x.get('ringload_exit') else ''))
        for p in x.get('problems', []):
            print(f"      problem: {p}")
        for c in x.get('caveats', []):
            print(f"      unchecked: {c}")
    for row in comparison:
        rr = row.get('ratio_ringcast_over_nchan')
        if not rr:
            continue
        print(f"  ringcast/nchan at {row['rate']:g} msg/s: latency p50 {rr['latency_p50']} p99 {rr['latency_p99']} "
              f"max {rr['latency_max']}, server CPU/delivery {rr['server_us_per_delivery']} "
              f"(user {rr['server_user_us_per_delivery']}), memory/idle connection {rr['server_pss_per_idle_connection']}"
              f"  [ringcast {row['ringcast_verdict']}, nchan {row['nchan_verdict']}]")
    print(f"  -> {out}")
    sys.exit(1 if any(x['verdict'] in ('failed', 'server_did_not_start') for x in R) else 0)


if __name__ == '__main__':
    main()
