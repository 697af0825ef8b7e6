#!/usr/bin/env python3
"""bench/peers/measure.py: runs one ringload against a running server and
measures the server's own cost over ringload's measure phase.

    measure.py --server-pid PID --out RUN.json [--timeout S] -- RINGLOAD ARGS...

PID is the server's main process; the server is PID and all its descendants
(ringcast: one process; nginx: the master and its workers), found afresh at
every sample. Reads ringload's progress lines on stderr (one a second):

  - memory: summed VmRSS and Pss (smaps_rollup) of the server processes
    before ringload starts and at the first progress line on which every
    subscriber is subscribed (before publishing starts, or failing that the
    first warmup/measure line). Pss splits shared pages (nginx's shared
    memory zone appears in every worker's RSS) between the processes that
    map them, so summed Pss counts them once.
  - CPU: utime+stime of the server processes, of ringload, and the whole
    machine's busy time (/proc/stat), right after the first "measure"
    progress line and right when ringload's stderr closes (it exits). The
    deliveries in that window are ringload's total minus the sum of the
    "deliv N/s" progress figures up to that first measure line, so CPU and
    deliveries cover the same stretch of time (the measured seconds minus up
    to 1 s, plus the drain).

A server process that exits during the window takes its CPU time with it:
the sample lists the PIDs seen at both ends. Bounded: ringload gets SIGTERM
after --timeout seconds, SIGKILL 10 s later. Never kills anything else.
Writes RUN.json (ringload's own JSON, without its histogram, under
"ringload") and exits 0 unless it could not run ringload at all.

    measure.py watch --server-pid PID --out SAMPLES.json --stop-file F [--timeout S] [--progress FILE]

The sampler behind bench/run (every server, ringcast and peers alike): it
starts ringload nothing and reads ringload nothing. Every 0.1 s it reads the
summed utime and stime of PID and its descendants (the set found afresh every
second) and the machine's busy and total ticks (/proc/stat), and their
summed VmRSS, Pss and Private_Dirty; with --progress (ringload's stderr as
it is written) the memory only until ringload's first progress line past its
connect phase, so that reading smaps_rollup costs nothing in the measured
window. Its own CPU time goes into the file. It stops when F exists (bench/run
creates it once ringload has exited), when PID is gone, after --timeout
seconds (default 900) or on SIGTERM, and writes the time series (epoch
seconds) to SAMPLES.json. bench/bench.py annotate then reads the figures over
ringload's own measured window (its "window": start_epoch_s, s) from them, by
linear interpolation between samples, so a server of several processes
(nginx: master + workers) is measured over the same window, the same way, as
ringcast, whose single-process figure ringload measures itself (the two agree
within a tick or two; bench.py records both).
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

TCK = os.sysconf('SC_CLK_TCK')
PROGRESS = re.compile(r'^\[\s*([\d.]+)s\] (\w+)\s+conns (\d+)/(\d+) subscribed (\d+) pub (\d+)/s deliv (\d+)/s')


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def stat_fields(pid):
    """(ppid, utime, stime, state) from /proc/PID/stat, or None."""
    s = read(f'/proc/{pid}/stat')
    if s is None:
        return None
    rest = s[s.rindex(')') + 2:].split()
    # rest[0] is field 3 (state); utime, stime are fields 14, 15.
    return int(rest[1]), int(rest[11]), int(rest[12]), rest[0]


def tree(root):
    """root and its descendants that exist now."""
    children = {}
    for d in os.listdir('/proc'):
        if d.isdigit():
            f = stat_fields(int(d))
            if f:
                children.setdefault(f[0], []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if stat_fields(p) is None:
            continue
        out.append(p)
        todo.extend(children.get(p, []))
    return sorted(out)


def cpu_sample(server_pid, client_pid):
    pids = tree(server_pid)
    per = {}
    for p in pids:
        f = stat_fields(p)
        if f:
            per[str(p)] = {'utime': f[1], 'stime': f[2]}
    c = stat_fields(client_pid) if client_pid else None
    with open('/proc/stat') as fh:
        cpu = fh.readline().split()[1:]
    busy = sum(int(x) for i, x in enumerate(cpu[:8]) if i not in (3, 4))  # all but idle, iowait
    return {
        't': time.monotonic(),
        'server': per,
        'client': {'utime': c[1], 'stime': c[2]} if c else None,
        'machine_busy_ticks': busy,
    }


def kb_fields(path, keys):
    d = {}
    s = read(path)
    for line in (s or '').splitlines():
        k, _, v = line.partition(':')
        if k in keys:
            d[k] = int(v.split()[0])
    return d


def mem_sample(server_pid):
    per = {}
    for p in tree(server_pid):
        st = kb_fields(f'/proc/{p}/status', {'VmRSS', 'RssAnon', 'RssShmem'})
        sm = kb_fields(f'/proc/{p}/smaps_rollup', {'Pss', 'Private_Clean', 'Private_Dirty'})
        per[str(p)] = {**st, **sm}
    tot = {}
    for v in per.values():
        for k, x in v.items():
            tot[k] = tot.get(k, 0) + x
    return {'processes': per, 'total_kb': tot}


def cpu_delta(a, b):
    """Server ticks over PIDs present at both ends, and the PIDs that came or went."""
    common = set(a['server']) & set(b['server'])
    u = sum(b['server'][p]['utime'] - a['server'][p]['utime'] for p in common)
    s = sum(b['server'][p]['stime'] - a['server'][p]['stime'] for p in common)
    client = None
    if a['client'] and b['client']:
        client = (b['client']['utime'] + b['client']['stime'] - a['client']['utime'] - a['client']['stime']) / TCK
    return {
        'window_s': b['t'] - a['t'],
        'server_user_s': u / TCK, 'server_sys_s': s / TCK, 'server_s': (u + s) / TCK,
        'server_pids': sorted(common, key=int),
        'server_pids_gone_or_new': sorted(set(a['server']) ^ set(b['server']), key=int),
        'client_s': client,
        'machine_busy_s': (b['machine_busy_ticks'] - a['machine_busy_ticks']) / TCK,
    }


def machine_ticks():
    """(busy, total) ticks of all CPUs, as ringload counts them (busy: all but idle and iowait)."""
    with open('/proc/stat') as fh:
        cpu = [int(x) for x in fh.readline().split()[1:]]
    total = sum(cpu[:8])
    return total - cpu[3] - cpu[4], total


def watch(argv):
    o = dict(zip(argv[::2], argv[1::2]))
    server_pid = int(o['--server-pid'])
    out, stop_file = o['--out'], o['--stop-file']
    deadline = time.monotonic() + float(o.get('--timeout', 900))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append('SIGTERM'))
    cpu, mem, pids_seen = [], [], set()
    pids, next_tree, next_mem = [], 0.0, 0.0
    # Memory is read until ringload has left its connect phase (its RSS
    # sample is taken as it does), then no more: smaps_rollup of nginx's
    # workers (their 128 MB shared zone, 65,536-connection arrays) costs
    # ~5 ms a read, which inside the measured window would be CPU charged
    # to "other" in the nchan runs only.
    progress, prog_off, mem_on = o.get('--progress'), 0, True
    why = 'stop file'
    while True:
        now = time.monotonic()
        if now >= next_tree:
            pids = tree(server_pid)
            pids_seen.update(pids)
            next_tree = now + 1.0
            if not pids:
                why = 'server gone'
                break
        u = st = 0
        for p in pids:
            f = stat_fields(p)
            if f:
                u += f[1]
                st += f[2]
        busy, total = machine_ticks()
        cpu.append([round(time.time(), 4), u, st, busy, total, len(pids)])
        if mem_on and progress:
            try:
                with open(progress, 'rb') as f:
                    f.seek(prog_off)
                    chunk = f.read()
                if b'\n' in chunk:
                    done = chunk[:chunk.rindex(b'\n') + 1]
                    prog_off += len(done)
                    if re.search(rb'\] (warmup|measure|drain|done) ', done):
                        mem_on = False  # after one last sample below
                        next_mem = 0.0
            except OSError:
                pass
        if now >= next_mem and (mem_on or next_mem == 0.0):
            m = {}
            for p in pids:
                for k, v in {**kb_fields(f'/proc/{p}/status', {'VmRSS'}),
                             **kb_fields(f'/proc/{p}/smaps_rollup', {'Pss', 'Private_Dirty'})}.items():
                    m[k] = m.get(k, 0) + v
            mem.append([round(time.time(), 4), m.get('VmRSS', 0), m.get('Pss', 0), m.get('Private_Dirty', 0)])
            next_mem = now + 0.1 if mem_on else float('inf')
        if stop:
            why = stop[0]
            break
        if os.path.exists(stop_file):
            break
        if now >= deadline:
            why = 'timeout'
            break
        time.sleep(0.1)
    t = os.times()
    res = {'server_pid': server_pid, 'pids_seen': sorted(pids_seen), 'clk_tck': TCK, 'stopped_by': why,
           'own_cpu_s': round(t.user + t.system, 3),
           'cpu_columns': ['epoch_s', 'utime', 'stime', 'machine_busy', 'machine_total', 'processes'],
           'cpu': cpu,
           'mem_columns': ['epoch_s', 'VmRSS_kb', 'Pss_kb', 'Private_Dirty_kb'], 'mem': mem}
    with open(out + '.tmp', 'w') as f:
        json.dump(res, f)
    os.replace(out + '.tmp', out)


def main():
    argv = sys.argv[1:]
    if argv[:1] == ['watch']:
        watch(argv[1:])
        return
    if '--' not in argv:
        sys.exit('usage: measure.py --server-pid PID --out FILE [--timeout S] [--subscribers N] -- RINGLOAD ARGS')
    opts, cmd = argv[:argv.index('--')], argv[argv.index('--') + 1:]
    o = dict(zip(opts[::2], opts[1::2]))
    server_pid = int(o['--server-pid'])
    out = o['--out']
    timeout = float(o.get('--timeout', 300))
    want_subs = int(o.get('--subscribers', 0))
    json_path = out + '.ringload.json'
    log_path = out + '.ringload.err'
    cmd = cmd + ['--json', json_path]

    res = {'command': cmd, 'server_pid': server_pid}
    res['memory_before'] = mem_sample(server_pid)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        res['error'] = f'cannot run ringload: {e}'
        json.dump(res, open(out, 'w'), indent=1)
        sys.exit(2)
    cum_deliv, cpu0, deliv0, mem1, timed_out = 0, None, None, None, False
    buf, lines, stdout = b'', [], b''
    fds = {proc.stderr.fileno(): 'err', proc.stdout.fileno(): 'out'}
    with open(log_path, 'w') as logf:
        while fds:
            left = start + timeout - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select(list(fds), [], [], min(left, 1.0))
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    del fds[fd]
                    continue
                if fds[fd] == 'out':
                    stdout += chunk
                    continue
                buf += chunk
                while b'\n' in buf:
                    raw, buf = buf.split(b'\n', 1)
                    line = raw.decode(errors='replace')
                    logf.write(line + '\n')
                    lines.append(line)
                    m = PROGRESS.match(line)
                    if not m:
                        continue
                    phase, subscribed = m.group(2), int(m.group(5))
                    cum_deliv += int(m.group(7))
                    if mem1 is None and ((want_subs and subscribed >= want_subs and phase in ('connect', 'warmup'))
                                         or phase in ('warmup', 'measure')):
                        mem1 = mem_sample(server_pid)
                        mem1['at'] = line
                        mem1['subscribed'] = subscribed
                        mem1['connections'] = int(m.group(3))
                    if cpu0 is None and phase == 'measure':
                        cpu0 = cpu_sample(server_pid, proc.pid)
                        deliv0 = cum_deliv
                        cpu0_line = line
        # stderr closed: ringload is exiting (or a zombie already).
        cpu1 = cpu_sample(server_pid, proc.pid) if cpu0 else None
    if timed_out:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    try:
        rc = proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait(5)
    res['ringload_exit'] = rc
    res['ringload_timed_out'] = timed_out
    res['ringload_stdout'] = stdout.decode(errors='replace').splitlines()
    for line in res['ringload_stdout']:
        print(line, file=sys.stderr)
    print(f'ringload exit status {rc}' + (' (timed out)' if timed_out else ''), file=sys.stderr)
    res['ringload_stderr_tail'] = lines[-8:]
    res['memory_subscribed'] = mem1
    rl = None
    if os.path.exists(json_path):
        try:
            rl = json.load(open(json_path))
            rl.pop('histogram', None)
        except ValueError as e:
            res['ringload_json_error'] = str(e)
    res['ringload'] = rl
    if cpu0 and cpu1:
        w = cpu_delta(cpu0, cpu1)
        w['from_line'] = cpu0_line
        w['deliveries'] = (rl['deliveries'] - deliv0) if rl else None
        if w['deliveries']:
            w['server_us_per_delivery'] = w['server_s'] / w['deliveries'] * 1e6
            w['server_user_us_per_delivery'] = w['server_user_s'] / w['deliveries'] * 1e6
            w['server_sys_us_per_delivery'] = w['server_sys_s'] / w['deliveries'] * 1e6
            if w['client_s'] is not None:
                w['client_us_per_delivery'] = w['client_s'] / w['deliveries'] * 1e6
        if w['client_s'] is not None:
            w['other_s'] = w['machine_busy_s'] - w['server_s'] - w['client_s']
        res['cpu_window'] = w
    else:
        res['cpu_window'] = None
    if mem1:
        conns = mem1['connections']
        b, a = res['memory_before']['total_kb'], mem1['total_kb']
        res['memory_per_connection_B'] = {
            k: round((a.get(k, 0) - b.get(k, 0)) * 1024 / conns, 1) if conns else None
            for k in ('Pss', 'VmRSS', 'RssAnon', 'Private_Dirty')
        }
    with open(out, 'w') as f:
        json.dump(res, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
