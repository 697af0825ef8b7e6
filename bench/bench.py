#!/usr/bin/python3
"""bench/bench.py: the helpers behind bench/run (plans, plots, the results table).

    bench.py plan SCENARIO.conf [--KEY VALUE]...   shell assignments for bench/run
    bench.py annotate RESULT.json META.json PROGRESS.err [SAMPLES.json]
                                                   fold bench/run's record (and the server's
                                                   process-tree samples, measure.py watch) into RESULT.json
    bench.py plot RESULT.json OUT.svg              latency curve + connections and deliveries/s
    bench.py table [RESULTS_DIR] [README]          regenerate the table in results/README.md
    bench.py tiers OUT.svg RESULT.json...          the kernel tiers side by side
    bench.py percentiles RESULT.json               the latency curve as text (percentile, ms)
    bench.py check RESULT.json                     exit 1 unless every subscriber subscribed
    bench.py peer-check PEER SCENARIO.conf [--KEY VALUE]...
                                                   exit 3 and say why when PEER cannot run it

Reads ringload's JSON result (README.md, "Results"); its "histogram" is the H1
text form of loadgen/hist.c's hist_encode, decoded here with the same layout
(HdrHistogram, 3 significant digits, 2048 sub-buckets). Writes only the files
it is given; runs gnuplot for the plots. Knows nothing about processes: bench/run
starts and stops them.
"""
import datetime
import json
import math
import os
import re
import shlex
import subprocess
import sys

# --- ringload's histogram (loadgen/hist.h) -------------------------------------

SUB_HALF_SHIFT = 10
SUB_BUCKETS = 2048


def hist_value_of(i):
    """The lowest value of the sub-bucket at counts index i (hist.c's hist_value_of)."""
    b = (i >> SUB_HALF_SHIFT) - 1
    sub = (i & (SUB_BUCKETS // 2 - 1)) + SUB_BUCKETS // 2
    if b < 0:
        sub -= SUB_BUCKETS // 2
        b = 0
    return sub << b


def hist_bucket_of(v):
    return max((v | (SUB_BUCKETS - 1)).bit_length() - 11, 0)


def hist_highest_equivalent(v):
    b = hist_bucket_of(v)
    idx = ((b + 1) << SUB_HALF_SHIFT) + (v >> b) - SUB_BUCKETS // 2
    return hist_value_of(idx) + (1 << b) - 1


def hist_decode(text):
    """H1 <count> <overflow> <min> <max>[ <gap>:<n>]... -> (count, min, max, [(lowest value, n)])."""
    f = text.split()
    if len(f) < 5 or f[0] != 'H1':
        raise ValueError('not an H1 histogram')
    count, _overflow, vmin, vmax = (int(x) for x in f[1:5])
    idx, buckets, total = 0, [], 0
    for k, tok in enumerate(f[5:]):
        gap, _, n = tok.partition(':')
        idx = int(gap) if k == 0 else idx + int(gap)
        buckets.append((hist_value_of(idx), int(n)))
        total += int(n)
    if total != count:
        raise ValueError(f'histogram counts add up to {total}, not {count}')
    return count, vmin, vmax, buckets


def value_at(hist, q):
    """hist_value_at: the highest equivalent value of the value whose rank reaches ceil(q count)."""
    count, vmin, vmax, buckets = hist
    if count == 0:
        return 0
    if q <= 0:
        return vmin
    rank = max(1, math.ceil(min(q, 1.0) * count))
    seen = 0
    for v, n in buckets:
        seen += n
        if seen >= rank:
            return min(hist_highest_equivalent(v), vmax)
    return vmax


def percentile_curve(hist):
    """[(percentile, ms)] from 0 to the last rank, ten points per decade of 1/(1-q)."""
    count = hist[0]
    if count == 0:
        return []
    pts, k = [], 0
    while True:
        q = 1 - 10 ** (-k / 10)
        if q * count > count - 1 or k > 70:
            break
        pts.append((q * 100, value_at(hist, q) / 1e6))
        k += 1
    pts.append((100 * (1 - 1 / (2 * count)) if count > 1 else 50.0, hist[2] / 1e6))
    return pts


# --- scenario files --------------------------------------------------------------

def parse_duration_s(text, unit_s=1.0):
    m = re.fullmatch(r'\s*([0-9.]+)\s*(ns|us|ms|s|m|h)?\s*', text)
    if not m:
        return None
    mult = {'ns': 1e-9, 'us': 1e-6, 'ms': 1e-3, 's': 1, 'm': 60, 'h': 3600, None: unit_s}[m.group(2)]
    return float(m.group(1)) * mult


def read_scenario(path):
    """(description, header {'server': ..., ...}, keys {key: value}) of a scenario file."""
    desc, header, keys = '', {}, {}
    with open(path) as f:
        lines = f.read().splitlines()
    for n, line in enumerate(lines):
        s = line.strip()
        if s.startswith('#'):
            body = s.lstrip('#').strip()
            if n == 0:
                # "# NAME: what it does" -> "what it does"
                desc = re.sub(r'^' + re.escape(os.path.basename(path).rsplit('.', 1)[0]) + r':\s*', '', body)
            m = re.match(r'(server|knobs|note|expect):\s*(.*)', body)
            if m:
                header[m.group(1)] = (header.get(m.group(1), '') + ' ' + m.group(2)).strip()
            continue
        s = re.sub(r'\s#.*', '', s)
        if '=' in s:
            k, _, v = s.partition('=')
            keys[k.strip()] = v.strip()
    return desc, header, keys


# --- peers (bench/run with PEER=...) ---------------------------------------------------

# What each peer can be driven with by ringload as it is (loadgen/engine.c),
# and why not the rest. bench/run refuses a scenario a peer cannot run and the
# table says "n/a" with the reason.
PEER_KINDS = {
    'nchan': {
        # WebSocket, long and short polls: ringload speaks nchan's dialects (ws_protocol =
        # nchan: ws+meta.nchan frames; poll_protocol = nchan: one message per answer,
        # If-Modified-Since/If-None-Match), which bench/run passes for PEER=nchan.
        'sse': None,
        'ws': None,
        'longpoll': None,
        'poll': None,
    },
    'node-ws': {
        'ws': None,
        'sse': 'the node-ws peer is a WebSocket server only (bench/peers/node-ws/server.js)',
        'longpoll': 'the node-ws peer has no long polling',
        'poll': 'the node-ws peer has no short polling',
    },
}
PEER_WORKERS = {'nchan': 'nginx 2 workers', 'node-ws': 'node, 1 process (1 CPU)', 'ringcast': '2 workers'}
KINDS = ('sse', 'ws', 'longpoll', 'poll')


def scenario_kinds(conf, extra):
    """{kind: count} of a scenario file with --KEY VALUE overrides, and the effective keys."""
    _, _, keys = read_scenario(conf)
    eff = dict(keys)
    for a, v in zip(extra[::2], extra[1::2]):
        eff[a.lstrip('-').replace('-', '_')] = v
    dflt = {'sse': 100}
    return {k: int(eff.get(k, dflt.get(k, 0)) or 0) for k in KINDS}, eff


def peer_conn_cap():
    """Connections one peer process can hold: its descriptors (ulimit -n, which nginx
    cannot raise here: no CAP_SYS_RESOURCE) less a spare. nginx's 2 workers could
    hold twice as many if the kernel spread the connections evenly; nothing
    makes it (one listening socket, multi_accept), so one worker's limit it is."""
    nofile = int(os.environ.get('NOFILE') or subprocess.run(
        ['bash', '-c', 'ulimit -n'], capture_output=True, text=True).stdout.strip() or 1024)
    return nofile - 1000


def peer_na(peer, conf, extra):
    """Why PEER cannot run CONF with these overrides, or ''."""
    if peer not in PEER_KINDS:
        return f'unknown peer {peer} (known: {", ".join(PEER_KINDS)})'
    base = os.path.basename(conf).rsplit('.', 1)[0]
    if base == 'fanout-tiers':
        return "ringcast's forced kernel tiers (`--compat`): no peer equivalent"
    kinds, eff = scenario_kinds(conf, extra)
    why = [f'{n:,} {k}: {PEER_KINDS[peer][k]}' for k, n in kinds.items() if n and PEER_KINDS[peer].get(k)]
    if eff.get('publish_via', 'http') == 'ws':
        why.append('publish_via = ws: ringload takes its own message back on the WebSocket as the acknowledgement'
                   + (' (a `ringcast.json` frame; nchan.conf publishes over HTTP only)' if peer == 'nchan' else ''))
    if eff.get('resume', 'none') != 'none' or eff.get('reconnect', 'off') != 'off':
        why.append('resume/reconnect: ringload resumes with `since` or decimal `Last-Event-ID`')
    pubs = int(eff.get('publishers', 1) or 0) if float(eff.get('publish_rate', '100') or 0) > 0 else 0
    conns, cap = sum(kinds.values()) + pubs, peer_conn_cap()
    if not why and conns > cap:
        why.append(f'{conns:,} connections; one {peer} process holds at most ~{cap:,} here (ulimit -n '
                   f'{cap + 1000}, not raisable on this box): run it scaled down, e.g. --sse/--ws {cap // 1000 * 1000}')
    return '; '.join(why)


def cmd_peer_check(argv):
    why = peer_na(argv[0], argv[1], argv[2:])
    if why:
        print(why)
        sys.exit(3)


def cmd_plan(argv):
    """Prints NAME=value lines (shell-quoted) that bench/run evals.

    Connections over one io_uring's descriptor table (RLIMIT_NOFILE, less a
    spare) need more tables: the server gets at least ceil(conns / per_table)
    workers, ringload at least as many threads, and past ~28,000 connections to
    one server address ringload spreads its source addresses over 127.0.0.2-
    (ip_local_port_range gives ~28,000 ports per source address). A scenario's
    own --workers / threads / src win when they are large enough.
    """
    conf, extra = argv[0], argv[1:]
    desc, header, keys = read_scenario(conf)
    over = {}
    i = 0
    while i < len(extra):
        a = extra[i]
        if not a.startswith('--') or i + 1 >= len(extra):
            sys.exit(f'bench/run: {a}: expected --KEY VALUE pairs after the scenario name')
        over[a[2:].replace('-', '_')] = extra[i + 1]
        i += 2
    eff = {**keys, **over}

    def num(k, d):
        v = eff.get(k, '')
        try:
            return int(v) if v != '' else d
        except ValueError:
            sys.exit(f'bench/run: {k} = {v}: expected a whole number')

    # ringload's defaults (loadgen/scenario.h).
    subs = num('sse', 100) + num('ws', 0) + num('longpoll', 0) + num('poll', 0)
    pubs = num('publishers', 1) if float(eff.get('publish_rate', '100') or 0) > 0 else 0
    conns = subs + pubs
    nofile = int(os.environ.get('NOFILE') or subprocess.run(
        ['bash', '-c', 'ulimit -n'], capture_output=True, text=True).stdout.strip() or 1024)
    per_table = max(nofile - 1000, 64)
    ncpu = os.cpu_count() or 1
    server = shlex.split(header.get('server', ''))
    server += shlex.split(os.environ.get('SERVER_ARGS', ''))
    compat = None
    for k, a in enumerate(server):
        if a == '--compat' and k + 1 < len(server):
            compat = server[k + 1]
    shared_table = compat == '5.10' or any('direct' in a for a in server if a != '--disable')
    notes = []
    if shared_table:
        if conns > per_table:
            sys.exit(f'bench/run: {conns} connections need direct descriptors: without them every '
                     f'worker shares one ulimit -n ({nofile})')
    else:
        workers = ncpu
        if '--workers' in server:
            workers = int(server[server.index('--workers') + 1])
        need = -(-conns // per_table)
        if need > workers:
            notes.append(f'server --workers {need} (not {workers}): {conns} connections, '
                         f'{per_table} per io_uring descriptor table')
            if '--workers' in server:
                server[server.index('--workers') + 1] = str(need)
            else:
                server += ['--workers', str(need)]
    client = []
    threads = num('threads', 0) or ncpu
    need = -(-conns // per_table)
    if need > threads:
        client += ['--threads', str(need)]
        notes.append(f'ringload --threads {need}')
    if conns > 28000 and not eff.get('src'):
        # ringload does not fill each address's ~28,000 ports evenly: 100,000
        # connections over 4 addresses stalled at 57,000 here, over 16 they all
        # connected; so at least 16, and one more per 12,500 connections.
        naddr = min(max(-(-conns // 12500), 16), 240)
        client += ['--src', f'127.0.0.2-127.0.0.{1 + naddr}']
        notes.append(f'ringload --src 127.0.0.2-127.0.0.{1 + naddr}')
    warmup = parse_duration_s(eff.get('warmup', '2s')) or 0
    duration = parse_duration_s(eff.get('duration', '10s')) or 10
    ramp = float(eff.get('ramp', '1000') or 0)
    connect_s = conns / ramp if ramp > 0 else 10
    connect_timeout = max(60, int(connect_s * 2 + 30))
    out = {
        'DESC': desc,
        'CONNS': str(conns),
        'SUBS': str(subs),
        'SERVER_FLAGS': shlex.join(server),
        'CLIENT_FLAGS': shlex.join(client),
        'CONNECT_TIMEOUT': str(connect_timeout),
        # connect + warm-up + measure + drain and teardown, generously (the
        # kernel tore ~2,600 connections a second down at 300,000 here)
        'RUN_TIMEOUT': str(int(connect_timeout + warmup + duration + 90 + conns / 2000)),
        'PLAN_NOTES': '; '.join(notes),
        # "# expect: 1 (why)": the exit status this box is expected to give
        'EXPECT': (header.get('expect', '0').split() or ['0'])[0],
    }
    for k, v in out.items():
        print(f'{k}={shlex.quote(v)}')


# --- annotate -------------------------------------------------------------------

PROGRESS = re.compile(r'^(?:\S.*? )?\[\s*([\d.]+)s\] (\w+)\s+conns (\d+)/(\d+) subscribed (\d+) '
                      r'pub (\d+)/s deliv (\d+)/s p99 ([\d.]+)ms lost (\d+) dup/reord (\d+) errors (\d+)')


def read_progress(path):
    rows = []
    try:
        with open(path, errors='replace') as f:
            for line in f:
                m = PROGRESS.match(line)
                if m:
                    rows.append({'t': float(m.group(1)), 'phase': m.group(2), 'conns': int(m.group(3)),
                                 'subscribed': int(m.group(5)), 'pub_per_s': int(m.group(6)),
                                 'deliv_per_s': int(m.group(7)), 'p99_ms': float(m.group(8)),
                                 'lost': int(m.group(9)), 'errors': int(m.group(11))})
    except OSError:
        pass
    return rows


def interp(rows, col, t):
    """rows[i][col] at epoch t, linear between the samples around it; None outside them."""
    if not rows or t < rows[0][0] or t > rows[-1][0]:
        return None
    lo, hi = 0, len(rows) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if rows[mid][0] <= t:
            lo = mid
        else:
            hi = mid
    a, b = rows[lo], rows[hi]
    if b[0] == a[0]:
        return a[col]
    return a[col] + (b[col] - a[col]) * (t - a[0]) / (b[0] - a[0])


def process_tree(res, samples):
    """The server's figures over ringload's window, from measure.py watch's samples
    of the server's whole process tree (nginx: master + workers)."""
    tck = samples.get('clk_tck') or 100
    cpu, mem = samples.get('cpu') or [], samples.get('mem') or []
    w = res.get('window') or {}
    out = {'method': 'bench/peers/measure.py watch: utime+stime summed over the server process and its '
                     'descendants every 0.1 s, interpolated at the ends of ringload\'s measured window; '
                     'VmRSS and Pss summed over them, also every 0.1 s: before ringload, and the last sample '
                     'before ringload\'s after-ramp point (its warm-up start, when it reads RSS itself), '
                     'over its connections',
           'pids': samples.get('pids_seen'), 'samples': len(cpu), 'stopped_by': samples.get('stopped_by'),
           'sampler_cpu_s': samples.get('own_cpu_s')}
    t0, ws = w.get('start_epoch_s'), w.get('s')
    if t0 and ws:
        t1 = t0 + ws
        v = [interp(cpu, c, t) for c in (1, 2, 3, 4) for t in (t0, t1)]
        if None not in v:
            u, st = (v[1] - v[0]) / tck, (v[3] - v[2]) / tck
            busy, total = v[5] - v[4], v[7] - v[6]
            d = w.get('deliveries') or 0
            out['cpu'] = {'window_s': ws, 'deliveries': d, 'user_s': round(u, 3), 'system_s': round(st, 3),
                          'us_per_delivery': round((u + st) / d * 1e6, 3) if d else None,
                          'user_us_per_delivery': round(u / d * 1e6, 3) if d else None}
            own = (res.get('ringload_cpu_window_s') or 0) * tck
            if total > 0:
                out['machine'] = {'busy_pct': round(100 * busy / total, 2),
                                  'other_pct': round(100 * max(busy - (u + st) * tck - own, 0) / total, 2)}
    sc = {}
    for line in (res.get('scenario') or '').splitlines():
        k, _, val = line.partition(' = ')
        sc[k] = val
    warm = parse_duration_s(sc.get('warmup', '2s')) or 0
    conns = res.get('connected') or 0
    if mem and t0 and conns:
        ramp_end = t0 - warm
        before = mem[0]
        # ringload reads the server's RSS right before it starts publishing
        # (0.3 s after the last subscription): the last sample before that.
        after = [r for r in mem if r[0] < ramp_end]
        if after and after[-1] is not before and ramp_end - after[-1][0] < 0.3:
            a = after[-1]
            out['memory'] = {'connections': conns, 'sampled_s_before_ramp_end': round(ramp_end - a[0], 3),
                             'before_kb': {'VmRSS': before[1], 'Pss': before[2], 'Private_Dirty': before[3]},
                             'after_ramp_kb': {'VmRSS': a[1], 'Pss': a[2], 'Private_Dirty': a[3]},
                             'Pss_bytes_per_connection': round((a[2] - before[2]) * 1024 / conns, 1),
                             'VmRSS_bytes_per_connection': round((a[1] - before[1]) * 1024 / conns, 1)}
    return out


def cmd_annotate(argv):
    result_path, meta_path, progress_path = argv[:3]
    with open(result_path) as f:
        res = json.load(f)
    with open(meta_path) as f:
        meta = json.load(f)
    meta['progress'] = read_progress(progress_path)
    k = meta.get('kernel_memory') or {}
    subs = meta.get('kernel_memory_connections') or 0
    if 'slab_kb_before' in k and 'slab_kb_subscribed' in k and subs:
        # Machine-wide: both socket ends of every loopback connection, plus
        # whatever else the box allocated meanwhile.
        k['slab_bytes_per_connection_pair'] = round((k['slab_kb_subscribed'] - k['slab_kb_before']) * 1024 / subs)
    if len(argv) > 3 and os.path.exists(argv[3]):
        with open(argv[3]) as f:
            meta['process_tree'] = process_tree(res, json.load(f))
    res['bench'] = meta
    tmp = result_path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(res, f, indent=1)
        f.write('\n')
    os.replace(tmp, result_path)


# --- plots ----------------------------------------------------------------------

def enh_escape(text):
    """Text for a double-quoted gnuplot string in enhanced mode, shown as is."""
    text = text.replace('"', "'")
    for c in '\\_^@&~{}':
        text = text.replace(c, '\\\\' + c)
    return text


def gnuplot(script, out):
    p = subprocess.run(['gnuplot'], input=script, text=True, capture_output=True, timeout=60)
    if p.returncode != 0 or not os.path.exists(out):
        sys.stderr.write(p.stderr)
        sys.exit(f'bench.py: gnuplot failed for {out}')


def cmd_plot(argv):
    result_path, out = argv
    with open(result_path) as f:
        res = json.load(f)
    name = (res.get('bench') or {}).get('name') or os.path.basename(result_path).rsplit('.', 1)[0]
    work = out + '.d'
    os.makedirs(work, exist_ok=True)
    curve = []
    if res.get('histogram'):
        curve = percentile_curve(hist_decode(res['histogram']))
    with open(f'{work}/lat.dat', 'w') as f:
        for p, ms in curve:
            # x: 1/(1-q), the "nines" axis; log scale
            f.write(f'{1 / (1 - p / 100):.6g} {max(ms, 1e-3):.6g} {p:.6g}\n')
    prog = (res.get('bench') or {}).get('progress') or []
    with open(f'{work}/prog.dat', 'w') as f:
        for r in prog:
            f.write(f"{r['t']} {r['conns']} {r['deliv_per_s']} {r['pub_per_s']}\n")
    desc = (res.get('bench') or {}).get('description', '')
    over = (res.get('bench') or {}).get('overrides')
    title = (f"{name}: {desc}" + (f" [{over}]" if over else '')).replace('"', "'")
    lat = res.get('latency_ms') or {}
    cpu = res.get('machine_cpu') or {}
    sub = (f"p50 {lat.get('p50', 0):g} ms, p99 {lat.get('p99', 0):g} ms, max {lat.get('max', 0):g} ms; "
           f"lost {res.get('lost')}, dup/reord {res.get('duplicated_or_reordered')}; "
           f"other CPU {cpu.get('other_pct', 0):.0f}%; exit {res.get('exit_status')}")
    # Enhanced-text specials in titles would become sub/superscripts or overprints.
    title, sub = enh_escape(title), enh_escape(sub)
    lines = [
        'set terminal svg size 1100,460 dynamic font "sans,11" background "white"',
        f'set output "{out}"',
        'set multiplot layout 1,2 title "' + title + '\\n{/*0.85 ' + sub + '}"',
        'set grid',
        'set key top left',
        'set title "delivery latency by percentile (SSE, WebSocket, long poll)"',
        'set logscale x', 'set logscale y',
        'set xlabel "percentile"', 'set ylabel "latency (ms)"',
        'set xtics ("0%%" 1, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000, "99.9999%%" 1000000)',
    ]
    if curve:
        lines.append(f'plot "{work}/lat.dat" using 1:2 with steps lw 2 lc rgb "#1f77b4" title "latency"')
    else:
        lines += ['set xrange [1:100]', 'set yrange [0.1:10]',
                  'set label 1 "no latency samples (nothing published, or short polls only)" at graph 0.1, graph 0.5',
                  'plot NaN notitle', 'unset label 1', 'set autoscale x', 'set autoscale y']
    lines += [
        'unset logscale x', 'unset logscale y',
        'set xtics auto',
        'set title "connections and deliveries over time (ringload progress)"',
        'set xlabel "seconds since ringload started"',
        'set ylabel "open connections"', 'set y2label "deliveries/s"',
        'set ytics nomirror', 'set y2tics', 'set key bottom right', 'set yrange [0:*]', 'set y2range [0:*]',
        'set format y "%.0s%c"', 'set format y2 "%.0s%c"',
    ]
    if prog and any(r['deliv_per_s'] for r in prog):
        lines.append(f'plot "{work}/prog.dat" using 1:2 with lines lw 2 lc rgb "#2ca02c" title "connections", '
                     f'"" using 1:3 axes x1y2 with lines lw 2 lc rgb "#d62728" title "deliveries/s"')
    elif prog:
        lines += ['unset y2tics', 'unset y2label', 'set yrange [0:*]', 'set offsets 0, 0, graph 0.05, 0']
        lines.append(f'plot "{work}/prog.dat" using 1:2 with lines lw 2 lc rgb "#2ca02c" title "connections (nothing delivered)"')
    else:
        lines.append('plot NaN notitle')
    lines.append('unset multiplot')
    gnuplot('\n'.join(lines) + '\n', out)
    for fn in ('lat.dat', 'prog.dat'):
        os.remove(f'{work}/{fn}')
    os.rmdir(work)


def cmd_tiers(argv):
    """One SVG: latency curves of several runs (one per kernel tier) on one axis."""
    out, paths = argv[0], argv[1:]
    work = out + '.d'
    os.makedirs(work, exist_ok=True)
    plots = []
    for k, p in enumerate(paths):
        with open(p) as f:
            res = json.load(f)
        tier = (res.get('bench') or {}).get('tier') or os.path.basename(p)
        cpu = res.get('server_cpu') or {}
        with open(f'{work}/{k}.dat', 'w') as f:
            if res.get('histogram'):
                for pc, ms in percentile_curve(hist_decode(res['histogram'])):
                    f.write(f'{1 / (1 - pc / 100):.6g} {max(ms, 1e-3):.6g}\n')
        plots.append(f'"{work}/{k}.dat" using 1:2 with steps lw 2 title "{tier}: '
                     f'{cpu.get("us_per_delivery", 0):.2f} us/delivery, exit {res.get("exit_status")}"')
    lines = [
        'set terminal svg size 800,480 dynamic font "sans,11" background "white"',
        f'set output "{out}"', 'set grid', 'set key bottom right',
        'set title "fan-out latency by forced kernel tier (ringcast --compat)"',
        'set logscale x', 'set logscale y', 'set xlabel "percentile"', 'set ylabel "latency (ms)"',
        'set xtics ("0%%" 1, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000, "99.9999%%" 1000000)',
        'plot ' + ', '.join(plots),
    ]
    gnuplot('\n'.join(lines) + '\n', out)
    for k in range(len(paths)):
        os.remove(f'{work}/{k}.dat')
    os.rmdir(work)


def cmd_check(argv):
    """Exit 1 (and say so) when not every subscriber got subscribed."""
    with open(argv[0]) as f:
        short = incomplete(json.load(f))
    if short:
        print(f'bench.py: {argv[0]}: {short}', file=sys.stderr)
        sys.exit(1)


def cmd_percentiles(argv):
    with open(argv[0]) as f:
        res = json.load(f)
    for p, ms in percentile_curve(hist_decode(res['histogram'])):
        print(f'{p:10.5f} {ms:12.3f}')


# --- the table in results/README.md -------------------------------------------------

BEGIN = '<!-- bench/run table: generated by bench/bench.py table; do not edit by hand -->'
END = '<!-- end of bench/run table -->'


def fmt_int(v):
    return '—' if v is None else f'{int(round(v)):,}'


def incomplete(res):
    """'only S of N subscribed' when subscribers never got their subscription,
    which ringload (as of da007f3) does not count as a failure."""
    kinds = res.get('kinds') or {}
    want = sum(k.get('clients', 0) for k in kinds.values())
    got = sum(k.get('subscribed', 0) for k in kinds.values())
    return f'only {got:,} of {want:,} subscribed' if got < want else ''


def row(path):
    with open(path) as f:
        res = json.load(f)
    b = res.get('bench')
    if not b or res.get('tool') != 'ringload':
        return None
    lat = res.get('latency_ms') or {}
    cpu = res.get('server_cpu') or {}
    mc = res.get('machine_cpu') or {}
    km = b.get('kernel_memory') or {}
    sc = {}
    for line in (res.get('scenario') or '').splitlines():
        k, _, v = line.partition(' = ')
        sc[k] = v
    prate = sc.get('publish_rate', '?')
    pub = f"{prate}/s × {sc.get('message_size', '?')} B" if prate not in ('0', '') else 'none'
    name = b.get('name', os.path.basename(path))
    w = res.get('window') or {}
    # All kinds' deliveries over the measured window: ringload's own
    # deliveries_per_s counts only deliveries with a latency sample (none for
    # short polls, none when no publish in the window was answered).
    rate = w['deliveries'] / w['s'] if w.get('s') else res.get('deliveries_per_s')
    if lat.get('count'):
        latency = f"{lat.get('p50', 0):.1f} / {lat.get('p99', 0):.1f} / {lat.get('max', 0):.1f}"
    else:
        latency = '—'
    status = 'ok' if res.get('exit_status') == 0 else f"**exit {res.get('exit_status')}**: {res.get('exit_reasons', '')}"
    short = incomplete(res)
    if short:
        status += ('; ' if status != 'ok' else ' but ') + f'**{short}**'
    if b.get('overrides'):
        name += f" `{b['overrides']}`"
    cpu_s = f"{cpu['us_per_delivery']:.2f} ({cpu['user_us_per_delivery']:.2f})" if cpu.get('us_per_delivery') else '—'
    svg = os.path.basename(path).rsplit('.', 1)[0] + '.svg'
    # Machine-wide Slab moves by tens of MB with other sessions' sockets: below
    # 50,000 connections that is more than ours, so no figure.
    subs = b.get('kernel_memory_connections') or 0
    kernel = fmt_int(km.get('slab_bytes_per_connection_pair')) if subs >= 50000 else '—'
    if b.get('expect') not in (None, '0') and str(res.get('exit_status')) == b.get('expect'):
        status += ' (expected here)'
    return (f"| [{name}]({svg}) | {b.get('date', '')[:16].replace('T', ' ')} | "
            f"{fmt_int(res.get('connected'))} / {fmt_int(res.get('clients'))} | {pub} | "
            f"{fmt_int(rate)} | {latency} | "
            f"{res.get('lost')} / {res.get('duplicated_or_reordered')} | "
            f"{fmt_int(res.get('server_bytes_per_connection'))} | {fmt_int(res.get('ringload_bytes_per_client'))} | "
            f"{kernel} | {cpu_s} | "
            f"{mc.get('other_pct', 0):.0f} % | {status} |")


def load_result(path):
    try:
        with open(path) as f:
            res = json.load(f)
    except (OSError, ValueError):
        return None
    return res if res.get('tool') == 'ringload' and res.get('bench') else None


def figures(res):
    """The figures a ratio is taken of, all measured the same way for every server:
    deliveries/s over ringload's window, its latency, and the server's whole
    process tree's CPU per delivery and Pss per connection (bench.process_tree)."""
    w = res.get('window') or {}
    lat = res.get('latency_ms') or {}
    pt = (res.get('bench') or {}).get('process_tree') or {}
    cpu, mem = pt.get('cpu') or {}, pt.get('memory') or {}
    f = {'deliv': w['deliveries'] / w['s'] if w.get('s') and w.get('deliveries') else None,
         'p50': lat.get('p50') if lat.get('count') else None,
         'p99': lat.get('p99') if lat.get('count') else None,
         'max': lat.get('max') if lat.get('count') else None,
         'cpu': cpu.get('us_per_delivery'),
         'mem': mem.get('Pss_bytes_per_connection'),
         'other': (pt.get('machine') or {}).get('other_pct')}
    return f


def fmt_fig(k, v):
    if v is None:
        return '—'
    if k == 'deliv' or k == 'mem':
        return f'{v:,.0f}'
    if k == 'cpu':
        return f'{v:.2f}'
    return f'{v:.1f}' if v < 1000 else f'{v:,.0f}'


def ratio_cell(k, a, b):
    if a is None or b is None:
        return '—'
    r = f'{a / b:.2f}' if b else '∞'
    return f'**{r}** ({fmt_fig(k, a)} / {fmt_fig(k, b)})'


def status_of(res):
    st = 'ok' if res.get('exit_status') == 0 else f"exit {res.get('exit_status')}: {res.get('exit_reasons', '')}"
    short = incomplete(res)
    return st + (f'; {short}' if short else '')


def peer_table(d, peer):
    """Rows ringcast/PEER for every scenario: the pairs that ran, n/a (why) for the rest."""
    sdir = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'scenarios')
    pdir, rdir = os.path.join(d, 'peers', peer), os.path.join(d, 'peers', 'ringcast')
    runs = {}
    if os.path.isdir(pdir):
        for fn in sorted(os.listdir(pdir)):
            if fn.endswith('.json'):
                res = load_result(os.path.join(pdir, fn))
                if res:
                    scen = os.path.basename(res['bench'].get('scenario_file', '')).rsplit('.', 1)[0]
                    runs.setdefault(scen, []).append((fn, res))
    rows = []
    for conf in sorted(os.listdir(sdir)):
        scen = conf.rsplit('.', 1)[0]
        if not conf.endswith('.conf') or scen == 'smoke':
            continue
        why = peer_na(peer, os.path.join(sdir, conf), [])
        if scen not in runs:
            rows.append(f'| {scen} | | n/a ({why or "not run yet"}) |||||||')
            continue
        if why:
            rows.append(f'| {scen} | as in the file | n/a ({why}); what can be compared is in the next '
                        f'row{"s" if len(runs[scen]) > 1 else ""} |||||||')
        for fn, pres in runs[scen]:
            over = pres['bench'].get('overrides') or ''
            rres = load_result(os.path.join(rdir, fn))
            if rres is None:
                cand = load_result(os.path.join(d, fn))
                rres = cand if cand and (cand['bench'].get('overrides') or '') == over else None
            label = f"[{fn.rsplit('.', 1)[0]}](peers/{peer}/{fn.rsplit('.', 1)[0]}.svg)"
            size = f"{pres.get('connected', 0):,} conns" + (f' `{over}`' if over else ' (as in the file)')
            if rres is None:
                rows.append(f'| {label} | {size} | n/a (no ringcast run with the same overrides) |||||||')
                continue
            a, b = figures(rres), figures(pres)
            cells = [ratio_cell(k, a[k], b[k]) for k in ('deliv', 'p50', 'p99', 'max', 'cpu', 'mem')]
            oth = f"{fmt_fig('p50', a['other'])} / {fmt_fig('p50', b['other'])} %"
            rows.append(f"| {label} | {size} | {' | '.join(cells)} | {oth} | "
                        f"{status_of(rres)} / {status_of(pres)} |")
    return rows


def cmd_table(argv):
    d = argv[0] if argv else 'results'
    readme = argv[1] if len(argv) > 1 else os.path.join(d, 'README.md')
    rows = []
    for fn in sorted(os.listdir(d)):
        if fn.endswith('.json') and fn != 'baseline.json':
            try:
                r = row(os.path.join(d, fn))
            except (ValueError, KeyError, OSError) as e:
                sys.stderr.write(f'bench.py: {fn}: skipped ({e})\n')
                continue
            if r:
                rows.append(r)
    table = [BEGIN, '',
             f'{len(rows)} scenario results, regenerated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC '
             'from `results/*.json` (`bench/bench.py table`).', '',
             '| scenario (plot) | run (UTC) | connected / clients | publishes | deliveries/s (window, all kinds) | latency ms p50 / p99 / max '
             '| lost / dup | server B/conn | ringload B/client | kernel B/conn pair (Slab, ≥ 50k conns) | server µs/delivery (user) '
             '| other CPU | status |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|', *rows, '']
    for peer in PEER_KINDS:
        prow = peer_table(d, peer)
        table += [f'### ringcast / {peer} ({PEER_WORKERS[peer]}; ringcast 2 workers)', '',
                  f'Each cell: **ringcast ÷ {peer}** (ringcast / {peer}), both runs by `bench/run` with the same '
                  f'scenario file, overrides and ringload, one after the other (`results/peers/ringcast/` and '
                  f'`results/peers/{peer}/`). Server CPU µs per delivery and Pss bytes per connection are the '
                  'whole process tree\'s (bench.process_tree), measured the same way for both. Below 1 is better '
                  'for ringcast except deliveries/s (above 1). "other CPU" is the share of the machine neither '
                  'server nor ringload took in the window.', '',
                  '| scenario (peer plot) | size | deliveries/s | latency p50 ms | p99 ms | max ms '
                  '| server CPU µs/delivery | server Pss B/conn | other CPU | status ringcast / peer |',
                  '|---|---|---|---|---|---|---|---|---|---|', *prow, '']
    table.append(END)
    text = open(readme).read() if os.path.exists(readme) else '# Benchmark results\n'
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + '\n'.join(table) + tail
    else:
        text = text.rstrip('\n') + '\n\n' + '\n'.join(table) + '\n'
    with open(readme, 'w') as f:
        f.write(text)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = {'plan': cmd_plan, 'annotate': cmd_annotate, 'plot': cmd_plot, 'table': cmd_table,
           'tiers': cmd_tiers, 'percentiles': cmd_percentiles, 'check': cmd_check,
           'peer-check': cmd_peer_check}.get(sys.argv[1])
    if not cmd:
        sys.exit(__doc__)
    cmd(sys.argv[2:])


if __name__ == '__main__':
    main()
