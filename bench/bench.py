#!/usr/bin/python3
"""bench/bench.py: the helpers behind bench/run (plans, plots, the results table).

    bench.py plan SCENARIO.conf [--KEY VALUE]...   shell assignments for bench/run
    bench.py annotate RESULT.json META.json PROGRESS.err   fold bench/run's record into RESULT.json
    bench.py plot RESULT.json OUT.svg              latency curve + connections and deliveries/s
    bench.py table [RESULTS_DIR] [README]          regenerate the table in results/README.md
    bench.py tiers OUT.svg RESULT.json...          the kernel tiers side by side
    bench.py percentiles RESULT.json               the latency curve as text (percentile, ms)
    bench.py check RESULT.json                     exit 1 unless every subscriber subscribed

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
        # connect + warm-up + measure + drain and teardown, generously
        'RUN_TIMEOUT': str(int(connect_timeout + warmup + duration + 90 + conns / 5000)),
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


def cmd_annotate(argv):
    result_path, meta_path, progress_path = argv
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
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|', *rows, '', END]
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
           'tiers': cmd_tiers, 'percentiles': cmd_percentiles, 'check': cmd_check}.get(sys.argv[1])
    if not cmd:
        sys.exit(__doc__)
    cmd(sys.argv[2:])


if __name__ == '__main__':
    main()
