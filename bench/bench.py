#!/usr/bin/env python3
"""make bench: tokenbrokerd side by side with nginx on this machine, in one run.

Starts privicore-sim, a fast origin (a second nginx and upload_sink.py), tokenbrokerd and nginx
(nginx set up to return the broker's token JSON from memory and to proxy_pass to the same simulator
and origin endpoints with the header set, one worker per broker thread, on the same kind of
listener), drives them with h2load, wrk, curl and bench/loadgen, and
writes bench/results/<date>.md. Server on core 0, clients on core 1 (taskset). Every process it
starts is stopped on exit. BENCH_QUICK=1: shorter runs, fewer repetitions, no 10-minute soak.
Python standard library only.
"""
import argparse
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "bench")
SERVER_CPU, CLIENT_CPU = "0", "1"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
TOKEN = "/v1/token/privicore"
ECHO = "/v1/proxy/privicore/data-token/echo"
SMALL = "/v1/proxy/origin/small"
SMALL_BODY = "tokenbroker bench origin: a small fixed answer of about one hundred bytes, " \
    "served from memory.\n"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes: every one is recorded and stopped on exit (normal, exception or signal).
class Procs:
    def __init__(self):
        self.live = []

    def start(self, argv, cpu=None, **kw):
        if cpu is not None:
            argv = ["taskset", "-c", cpu] + argv
        p = subprocess.Popen(argv, **kw)
        self.live.append(p)
        return p

    def stop(self, p, timeout=10):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in reversed(list(self.live)):
            self.stop(p)


PROCS = Procs()


def wait_for(cond, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = cond()
        if r:
            return r
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


# ---------------------------------------------------------------------------------------------
# /proc: CPU time and resident memory of a set of processes.
def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)
    return total


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def pss_kib(pids):
    """Proportional set size: shared library pages divided among the processes mapping them."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------------------------
# HTTP over a unix socket or TCP, blocking, for set-up and checks (not for load).
def http_get(target, unix=None, tcp=None, headers=None, timeout=10, method="GET", body=None):
    import http.client

    class UnixConn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)

    conn = UnixConn("localhost", timeout=timeout) if unix else \
        http.client.HTTPConnection(tcp[0], tcp[1], timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def sim_admin(sim_url, method, target, body=None):
    import urllib.request
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(sim_url + target, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------------------------------------
# The three servers.
class Sim:
    def __init__(self, work, name, ttl="30s", cpu=CLIENT_CPU, extra=()):
        self.client_id, self.secret = "bench-client", "bench-client-secret-0123456789"
        argv = [f"{BIN}/privicore-sim", "--listen", "127.0.0.1:0", "--profile", "bench:bench-pw",
                "--app", f"bench:{self.client_id}:{self.secret}", "--access-token-ttl", ttl,
                "--max-connections", "20000", "--log-level", "warn", *extra]
        self.proc = PROCS.start(argv, cpu=cpu, stdout=subprocess.PIPE,
                                stderr=open(os.path.join(work, f"{name}.log"), "w"), text=True)
        line = self.proc.stdout.readline().strip()
        if "listening on" not in line:
            raise RuntimeError(f"privicore-sim did not start: {line!r}")
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])


class Origin:
    """The fast upstream of both proxies, pinned to the client core like the simulator: a second
    nginx (origin.conf.in: /small from memory, /download a sparse file by sendfile, /token a
    static oauth2 token for the broker's `origin` credential) and upload_sink.py (reads every
    upload to its end and answers its byte count). Calls without the token get 401."""

    def __init__(self, work, download_bytes, cpu=CLIENT_CPU):
        self.dir = os.path.join(work, "origin")
        os.makedirs(os.path.join(self.dir, "www"))
        self.token = os.urandom(24).hex()
        self.client_id, self.secret = "bench-origin", os.urandom(16).hex()
        self.download_bytes = download_bytes
        with open(os.path.join(self.dir, "www", "download"), "wb") as f:
            f.truncate(download_bytes)  # sparse: no disk, and reads cost no I/O
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(os.path.join(HERE, "origin.conf.in")) as f:
            conf = f.read()
        user = "user root;" if os.geteuid() == 0 else ""
        for k, v in {"@USER@": user, "@DIR@": self.dir, "@PORT@": str(self.port),
                     "@TOKEN@": self.token, "@SMALL@": SMALL_BODY}.items():
            conf = conf.replace(k, v)
        path = os.path.join(self.dir, "nginx.conf")
        write_secret(path, conf)
        self.proc = PROCS.start(["nginx", "-p", self.dir, "-c", path, "-g", "daemon off;"],
                                cpu=cpu, stderr=open(os.path.join(self.dir, "stderr"), "w"))
        wait_for(lambda: self._alive() and self._answers(), "the origin nginx")
        self.pids = [self.proc.pid] + children(self.proc.pid)
        self.sink = PROCS.start([sys.executable, os.path.join(HERE, "upload_sink.py")], cpu=cpu,
                                stdout=subprocess.PIPE, text=True)
        line = self.sink.stdout.readline().strip()
        if "listening on" not in line:
            raise RuntimeError(f"upload_sink.py did not start: {line!r}")
        self.sink_url = line.split()[-1]
        self.sink_port = int(self.sink_url.rsplit(":", 1)[1])

    def _alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"the origin nginx exited; see {self.dir}/stderr")
        return True

    def _answers(self):
        try:
            return http_get("/small", tcp=("127.0.0.1", self.port), timeout=1)[0] == 401
        except OSError:
            return False

    def credentials(self, secret_file):
        """The broker's two oauth2 credentials on this origin: `origin` (nginx) and `sink`."""
        return "".join(
            f'[credential.{name}]\nprovider = "oauth2"\ngrant = "client_credentials"\n'
            f'token_url = "{self.url}/token"\nclient_id = "{self.client_id}"\n'
            f'client_secret_file = "{secret_file}"\napi_url = "{api}"\n'
            f'inject_header = "Authorization"\ninject_format = "Bearer {{token}}"\n\n'
            for name, api in (("origin", self.url), ("sink", self.sink_url)))


class Broker:
    def __init__(self, work, name, sim, credentials=1, cpu=SERVER_CPU, origin=None):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, mode=0o700)
        self.sock = os.path.join(self.dir, "tb.sock")
        self.names = ["privicore"] + [f"cred{i}" for i in range(1, credentials)]
        write_secret(os.path.join(self.dir, "client-secret"), sim.secret)
        write_secret(os.path.join(self.dir, "password"), "bench-pw")
        write_secret(os.path.join(self.dir, "state.key"), os.urandom(32).hex())
        cfg = [f'[server]\nsocket = "{self.sock}"\nsocket_mode = "0600"\nlisten = "127.0.0.1:0"',
               f'state_dir = "{self.dir}/state"\nstate_key_file = "{self.dir}/state.key"',
               "max_connections = 20000\n"]
        for n in self.names:
            cfg.append(f'[credential.{n}]\nprovider = "privicore"\napi_url = "{sim.url}"\n'
                       f'client_id = "{sim.client_id}"\n'
                       f'client_secret_file = "{self.dir}/client-secret"\nusername = "bench"\n'
                       f'password_file = "{self.dir}/password"\nscopes = ["all"]\n')
        if origin:
            write_secret(os.path.join(self.dir, "origin-secret"), origin.secret)
            cfg.append(origin.credentials(f"{self.dir}/origin-secret"))
            self.names += ["origin", "sink"]
        self.config = os.path.join(self.dir, "tokenbroker.toml")
        write_secret(self.config, "\n".join(cfg))
        self.log_path = os.path.join(self.dir, "broker.log")
        self.proc = PROCS.start([f"{BIN}/tokenbrokerd", "--config", self.config, "--log-level",
                                 "warn" if credentials > 1 else "info"], cpu=cpu,
                                stderr=open(self.log_path, "w"))
        self.pids = [self.proc.pid]
        if credentials == 1:
            self.port = wait_for(self._tcp_port, "tokenbrokerd's TCP listener")
        t0 = time.monotonic()
        wait_for(lambda: self._alive() and os.path.exists(self.sock), "tokenbrokerd's socket",
                 timeout=600)
        self.listening_s = time.monotonic() - t0
        wait_for(lambda: http_get("/readyz", unix=self.sock)[0] == 200,
                 f"{len(self.names)} credential(s) to be fresh", timeout=600)
        self.ready_s = time.monotonic() - t0

    def _alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"tokenbrokerd exited; see {self.log_path}")
        return True

    def _tcp_port(self):
        self._alive()
        with open(self.log_path) as f:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
        return int(m.group(1)) if m else None


class Nginx:
    def __init__(self, work, token_json, sim, token, workers, origin):
        self.dir = os.path.join(work, "nginx")
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "nginx.sock")
        self.port = free_port()
        with open(os.path.join(HERE, "nginx.conf.in")) as f:
            conf = f.read()
        user = "user root;" if os.geteuid() == 0 else ""
        for k, v in {"@USER@": user, "@WORKERS@": str(workers), "@DIR@": self.dir,
                     "@SOCK@": self.sock, "@PORT@": str(self.port), "@SIM_PORT@": str(sim.port),
                     "@TOKEN_JSON@": token_json, "@TOKEN@": token,
                     "@ORIGIN_PORT@": str(origin.port), "@SINK_PORT@": str(origin.sink_port),
                     "@ORIGIN_TOKEN@": origin.token}.items():
            conf = conf.replace(k, v)
        path = os.path.join(self.dir, "nginx.conf")
        write_secret(path, conf)
        self.proc = PROCS.start(["nginx", "-p", self.dir, "-c", path, "-g", "daemon off;"],
                                cpu=SERVER_CPU, stderr=open(os.path.join(self.dir, "stderr"), "w"))
        wait_for(lambda: os.path.exists(self.sock) and len(children(self.proc.pid)) >= workers,
                 "nginx")
        self.pids = [self.proc.pid] + children(self.proc.pid)


def write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Load tools. Each returns a dict with at least requests, rps, errors; latency where it has it.
def client(argv):
    pin = ["taskset", "-c", CLIENT_CPU] if CLIENT_CPU else []
    r = subprocess.run(pin + argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


def h2load(target, unix, conns, seconds, data=None):
    argv = ["h2load", "--h1", "-B", f"unix:{unix}", "-c", str(conns), "-D", str(seconds)]
    if data:
        argv += ["-d", data]
    out = client(argv + [f"http://localhost{target}"])
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored", out)
    done, ok, failed, errored = (int(x) for x in m.groups()[1:])
    st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    t = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    return {"requests": done, "rps": done / seconds, "errors": failed + errored,
            "non_2xx": sum(int(x) for x in st.groups()[1:]), "mean_us": to_us(t.group(3)),
            "max_us": to_us(t.group(2))}


def wrk(target, port, conns, seconds):
    out = client(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-H",
                  "X-Token-Broker: 1", f"http://127.0.0.1:{port}{target}"])
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    secs = to_us(m.group(2) + m.group(3)) / 1e6
    errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))
    return {"requests": int(m.group(1)), "rps": int(m.group(1)) / secs, "errors": errs,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "p50_us": to_us(p["50"]),
            "p99_us": to_us(p["99"])}


def loadgen(*args):
    return json.loads(client([f"{BIN}/loadgen", *args]).strip().splitlines()[-1])


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)?", text)
    v, unit = float(m.group(1)), m.group(2) or "s"
    return v * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}[unit]


def measured(server, fn):
    """Runs fn() and adds the server's CPU microseconds per request over that run."""
    before = cpu_ticks(server.pids)
    r = fn()
    cpu_us = (cpu_ticks(server.pids) - before) * 1e6 / TICK
    r["cpu_us_per_req"] = cpu_us / r["requests"] if r["requests"] else float("nan")
    r["cpu_share"] = cpu_us / 1e6 / r.get("seconds", 1) if "seconds" in r else None
    return r


def ab(servers, reps, fn):
    """A/B/A/B...: fn(server) alternately on each server, `reps` rounds; lists per server."""
    out = {name: [] for name in servers}
    for _ in range(reps):
        for name, s in servers.items():
            out[name].append(measured(s, lambda: fn(s)))
    return out


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")


# ---------------------------------------------------------------------------------------------
# Scenarios. Each appends rows to REPORT (sections of markdown) and raw data to RAW.
REPORT, RAW = [], {}


def section(title, lines):
    REPORT.append(f"## {title}\n\n" + "\n".join(lines) + "\n")


def table_ab(title, rows, results, unit_note=""):
    lines = ["| scenario | broker req/s | nginx req/s | ratio | broker CPU µs/req | "
             "nginx CPU µs/req | broker p99 | nginx p99 | errors (b/n) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label in rows:
        b, n = results[label]["broker"], results[label]["nginx"]
        rb, rn = med(b, "rps"), med(n, "rps")
        p99 = lambda runs: (f"{med(runs, 'p99_us') / 1000:.2f} ms"
                            if any("p99_us" in r for r in runs) else "—")
        errs = lambda runs: sum(r["errors"] + r.get("non_2xx", 0) for r in runs)
        lines.append(f"| {label} | {rb:,.0f} | {rn:,.0f} | {rb / rn:.2f} | "
                     f"{med(b, 'cpu_us_per_req'):.1f} | {med(n, 'cpu_us_per_req'):.1f} | "
                     f"{p99(b)} | {p99(n)} | {errs(b)}/{errs(n)} |")
    if unit_note:
        lines += ["", unit_note]
    section(title, lines)


def scenario_token(servers, cfg):
    results, rows = {}, []
    for transport in ("unix", "tcp"):
        for c in (1, 32, 256):
            label = f"token, {transport}, {c} conn"
            log(label)
            if transport == "unix":
                fn = lambda s, c=c: h2load(TOKEN, s.sock, c, cfg.seconds)
            else:
                fn = lambda s, c=c: wrk(TOKEN, s.port, c, cfg.seconds)
            results[label] = ab(servers, cfg.reps, fn)
            rows.append(label)
    # p99 over the unix socket at 256 connections: h2load reports no percentiles, loadgen does.
    label = "token, unix, 256 conn (loadgen)"
    log(label)
    results[label] = ab(servers, cfg.reps, lambda s: loadgen(
        "--unix", s.sock, "--get", TOKEN, "--connections", "256", "--duration",
        f"{cfg.seconds}s"))
    rows.append(label)
    RAW["token"] = results
    table_ab("Token fetch", rows, results,
             "unix: h2load --h1 -B unix:… (mean latency only; p99 from the loadgen row); "
             "tcp: wrk -t1 --latency. Medians of the A/B rounds; CPU is the server's "
             "utime+stime from /proc/PID/stat over the run divided by the requests served.")
    return results


def scenario_loadgen_check(servers, cfg):
    log("loadgen vs h2load against nginx")
    n = servers["nginx"]
    h, lg, tb = [], [], []
    for _ in range(cfg.reps):
        h.append(h2load(TOKEN, n.sock, 32, cfg.seconds))
        lg.append(loadgen("--unix", n.sock, "--get", TOKEN, "--connections", "32", "--duration",
                          f"{cfg.seconds}s"))
        # And loadgen checking every token the broker hands out, at the same concurrency.
        tb.append(loadgen("--unix", servers["broker"].sock, "--get", TOKEN, "--connections",
                          "32", "--duration", f"{cfg.seconds}s", "--verify"))
    ratio = med(lg, "rps") / med(h, "rps")
    RAW["loadgen_check"] = {"h2load": h, "loadgen": lg, "loadgen_verify_broker": tb}
    bad = sum(r["token_bad_json"] + r["token_expired"] + r["token_went_back"] for r in tb)
    section("Can loadgen's figures be trusted?", [
        "| against nginx, unix, 32 conn | req/s (median) |", "|---|---:|",
        f"| h2load | {med(h, 'rps'):,.0f} |", f"| loadgen | {med(lg, 'rps'):,.0f} |",
        f"| **loadgen / h2load** | **{ratio:.2f}** (target ≥ 0.8) |", "",
        f"loadgen with `--verify` against the broker (every answer parsed; token well-formed, "
        f"unexpired, never older than the last one on that connection): "
        f"{med(tb, 'rps'):,.0f} req/s, {sum(r['tokens_checked'] for r in tb):,} tokens checked, "
        f"{bad} bad, {sum(r['errors'] for r in tb)} errors."])


ORIGIN_SMALL_GET = "proxied GET /small (nginx origin), unix, 32 conn"
ORIGIN_SMALL_POST = "proxied POST 1 KiB (nginx origin), unix, 32 conn"


def direct_rps(url, seconds, header, data=None):
    """h2load straight at an upstream over TCP (no proxy), on the client core: its ceiling."""
    argv = ["h2load", "--h1", "-c", "32", "-D", str(seconds), "-H", header]
    if data:
        argv += ["-d", data]
    out = client(argv + [url])
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    st = re.search(r"status codes: (\d+) 2xx", out)
    if int(st.group(1)) != int(m.group(1)):
        raise RuntimeError(f"{url} answered non-2xx directly: {out[-800:]}")
    return int(m.group(1)) / seconds


def scenario_proxy(servers, sim, origin, cfg):
    body = os.path.join(cfg.work, "post-1k.bin")
    with open(body, "wb") as f:
        f.write(b"x" * 1024)
    results, rows = {}, []
    for label, fn in [
        ("proxied GET /data-token/echo, unix, 32 conn",
         lambda s: h2load(ECHO, s.sock, 32, cfg.seconds)),
        ("proxied POST 1 KiB /data-token/echo, unix, 32 conn",
         lambda s: h2load(ECHO, s.sock, 32, cfg.seconds, data=body)),
        (ORIGIN_SMALL_GET, lambda s: h2load(SMALL, s.sock, 32, cfg.seconds)),
        (ORIGIN_SMALL_POST, lambda s: h2load(SMALL, s.sock, 32, cfg.seconds, data=body)),
    ]:
        log(label)
        results[label] = ab(servers, cfg.reps, fn)
        rows.append(label)
    # Each upstream's own rate for the same call bounds both proxies.
    tok = json.loads(http_get(TOKEN, unix=servers["broker"].sock)[1])["access_token"]
    sim_rps = direct_rps(f"{sim.url}/data-token/echo", cfg.seconds, f"X-DPT-AUTHORIZATION: {tok}")
    bearer = f"Authorization: Bearer {origin.token}"
    origin_get = direct_rps(f"{origin.url}/small", cfg.seconds, bearer)
    origin_post = direct_rps(f"{origin.url}/small", cfg.seconds, bearer, data=body)
    RAW["proxy"] = results
    RAW["proxy_direct"] = {"sim_get": sim_rps, "origin_get": origin_get,
                           "origin_post": origin_post}
    table_ab("Proxy", rows, results,
             f"Directly (h2load over TCP, 32 conn, no proxy) privicore-sim answers the echo GET at "
             f"{sim_rps:,.0f} req/s: one thread on the client's core (1), it bounds both proxies "
             f"in its rows. The nginx origin (one worker, also on core 1, `return 200` of "
             f"{len(SMALL_BODY)} bytes from memory) answers GET /small at {origin_get:,.0f} and "
             f"the 1 KiB POST at {origin_post:,.0f} req/s, so in the origin rows the proxy is what "
             "is measured; the proxy target is judged on them. nginx: proxy_pass with an upstream "
             "keepalive pool, the header set by proxy_set_header. Both proxies' calls to the "
             "origin carry the broker's oauth2 token (`Authorization: Bearer`); the origin "
             "answers 401 without it.")


def stream(kind, sock, target, nbytes, source=None, header=None):
    """One transfer with curl, through a proxy (sock) or straight to the upstream. upload: chunked from a pipe, or with Content-Length from
    `source` (a file of nbytes); the upstream must answer {"bytes": N} with N == nbytes.
    download: the count received must be nbytes."""
    # sock None: straight at the upstream, target is then a whole URL.
    url, via = (target, "") if sock is None else \
        (f"http://localhost{target}", f"--unix-socket {sock} ")
    if header:
        via += f"-H '{header}' "
    if kind == "upload":
        src = f"-T {source}" if source else "-T -"
        feed = "" if source else f"head -c {nbytes} /dev/zero | "
        cmd = (f"{feed}taskset -c {CLIENT_CPU} curl -sS {via}"
               f"-X POST {src} -H 'Content-Type: application/octet-stream' -o {{out}} "
               f"-w '%{{http_code}} %{{time_total}}' '{url}'")
    else:
        cmd = (f"taskset -c {CLIENT_CPU} curl -sS {via}-o /dev/null "
               f"-w '%{{http_code}} %{{time_total}} %{{size_download}}' '{url}'")
    out_file = tempfile.mktemp(dir=CFG.work)
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd.replace("{out}", out_file)],
                       capture_output=True, text=True)
    parts = r.stdout.split()
    ok = r.returncode == 0 and parts and parts[0] == "200"
    if kind == "upload" and ok:
        with open(out_file) as f:
            ok = json.load(f).get("bytes") == nbytes
    elif ok:
        ok = int(parts[2]) == nbytes
    if os.path.exists(out_file):
        os.unlink(out_file)
    secs = float(parts[1]) if len(parts) > 1 else float("nan")
    return {"ok": ok, "seconds": secs, "gb_per_s": nbytes / secs / 1e9 if ok else 0.0,
            "requests": 1, "errors": 0 if ok else 1}


def scenario_streaming(servers, sim, origin, cfg):
    nbytes = cfg.stream_bytes
    mib = nbytes >> 20
    source = os.path.join(cfg.work, "upload.bin")
    with open(source, "wb") as f:
        f.truncate(nbytes)  # sparse: curl reads zeros without disk I/O
    lines = ["| transfer | broker GB/s | nginx GB/s | broker CPU s/GiB | nginx CPU s/GiB | ok (b/n) |",
             "|---|---:|---:|---:|---:|---:|"]
    RAW["streaming"], RAW["streaming_direct"] = {}, {}
    transfers = [
        ("upload", f"upload {mib} MiB (origin)", "/v1/proxy/sink/upload", source),
        ("download", f"download {mib} MiB (origin)", "/v1/proxy/origin/download", None),
        ("upload", f"upload {mib} MiB (simulator)", "/v1/proxy/privicore/data-token/upload",
         None),
        ("download", f"download {mib} MiB (simulator)",
         f"/v1/proxy/privicore/data-token/download?bytes={nbytes}", None),
    ]
    for kind, label, target, src in transfers:
        log(f"proxied {label}")
        # One transfer through each proxy first, not measured. The first reader of a sparse
        # file has the page cache filled with zeros as it reads (ext4), and the first call
        # opens the upstream connection: whichever proxy went first ran at a third of its
        # rate (0.3 against 0.9 GB/s) in a quick run, which measures each transfer once.
        for s in servers.values():
            if not stream(kind, s.sock, target, nbytes, src)["ok"]:
                raise RuntimeError(f"the warm-up transfer {label} failed")
        res = ab(servers, cfg.stream_reps, lambda s: stream(kind, s.sock, target, nbytes, src))
        RAW["streaming"][label] = res
        gib = nbytes / (1 << 30)
        cpu = lambda runs: med(runs, "cpu_us_per_req") / 1e6 / gib
        ok = lambda runs: f"{sum(r['ok'] for r in runs)}/{len(runs)}"
        lines.append(f"| {label} | {med(res['broker'], 'gb_per_s'):.2f} | "
                     f"{med(res['nginx'], 'gb_per_s'):.2f} | {cpu(res['broker']):.2f} | "
                     f"{cpu(res['nginx']):.2f} | {ok(res['broker'])} vs {ok(res['nginx'])} |")
    # The origin's own rate, without a proxy: the ceiling of its rows.
    up = [stream("upload", None, f"{origin.sink_url}/upload", nbytes, source)
          for _ in range(cfg.stream_reps)]
    down = [stream("download", None, f"{origin.url}/download", nbytes,
                   header=f"Authorization: Bearer {origin.token}")
            for _ in range(cfg.stream_reps)]
    if not all(r["ok"] for r in up + down):
        raise RuntimeError(f"a direct transfer to the origin failed: {up} {down}")
    RAW["streaming_direct"] = {"upload": up, "download": down}
    lines += ["", "curl over the unix socket. Origin rows: the upload is sent with Content-Length "
              "from a sparse file to bench/upload_sink.py, which reads it to the end (bytes "
              "dropped in the kernel, MSG_TRUNC) and answers its byte count (checked); the download "
              "is a sparse file nginx sends with sendfile, counted by curl. Both upstreams run on "
              "the client's core with curl. Without a proxy (curl straight to them, same core) they "
              f"move {med(up, 'gb_per_s'):.2f} GB/s up and {med(down, 'gb_per_s'):.2f} GB/s down: "
              "that is the ceiling of the origin rows, on which the 1 GB/s target is judged. "
              "Simulator rows: the upload is chunked from a pipe and the simulator hashes every "
              "byte and answers its count (checked); it generates the download. It is single-"
              "threaded and bounds both proxies there (kept: they exercise chunked uploads and the "
              "Privicore credential). nginx: proxy_request_buffering off, proxy_buffering off."]
    section("Streaming through the proxy", lines)


def scenario_storm(cfg):
    log(f"refresh storm: {cfg.storm_conns} clients")
    sim = Sim(cfg.work, "storm-sim", ttl="10s")
    broker = Broker(cfg.work, "storm-broker", sim)
    r = measured(broker, lambda: loadgen(
        "storm", "--unix", broker.sock, "--get", TOKEN, "--connections", str(cfg.storm_conns),
        "--duration", "90s", "--verify", "--sim", sim.url))
    RAW["storm"] = r
    PROCS.stop(broker.proc)
    PROCS.stop(sim.proc)
    bad = r["token_bad_json"] + r["token_expired"] + r["token_went_back"]
    section("Refresh storm", [
        f"{cfg.storm_conns:,} keep-alive clients on the unix socket connect at once and are each "
        "answered once; then all fetch the token in a closed loop together, until 1 s after the "
        "token turned over (simulator access tokens live 10 s; the broker refreshes at about "
        "half-life). Refreshes are counted over both phases.", "",
        "| figure | value | target |", "|---|---:|---|",
        f"| clients answered once / first answer p50, p99, max (connect + accept + answer) | "
        f"{r['clients_answered_once']:,} / {r['first_answer_p50_us'] / 1000:.1f}, "
        f"{r['first_answer_p99_us'] / 1000:.1f}, {r['first_answer_max_us'] / 1000:.1f} ms | — |",
        f"| refreshes seen by the simulator | {r['sim_refreshes']} | exactly 1 |",
        f"| errors (transport / non-2xx) | {r['errors']} / {r['non_2xx']} | 0 |",
        f"| connects refused (listen queue full) and retried | {r['connect_errors']:,} | — |",
        f"| errors by kind | {r.get('error_kinds') or '—'} | — |",
        f"| requests served | {r['requests']:,} ({r['rps']:,.0f}/s over {r['seconds']:.1f} s) | — |",
        f"| p50 / p99 / max latency in the storm | {r['p50_us'] / 1000:.1f} / {r['p99_us'] / 1000:.1f} / "
        f"{r['max_us'] / 1000:.1f} ms | — |",
        f"| tokens checked / bad | {r['tokens_checked']:,} / {bad} | 0 bad |",
        f"| distinct tokens; simulator's verdicts | {r['distinct_tokens']}; "
        f"{r['sim_verdicts']} | 2: old superseded, new ok |",
        f"| tokens the simulator rejected | {r['sim_rejected_tokens']} | 0 |",
        "", f"With {cfg.storm_conns:,} requests always in flight on one core, p99 is about the "
        "time to serve one round of all of them: it measures queueing, not the refresh."])


def scenario_idle_credentials(cfg):
    log("1,000 credentials idle")
    sim = Sim(cfg.work, "many-sim", ttl="1h")
    t0 = time.monotonic()
    broker = Broker(cfg.work, "many-broker", sim, credentials=1000)
    ready = time.monotonic() - t0
    rss = rss_kib(broker.pids)
    before, t = cpu_ticks(broker.pids), time.monotonic()
    time.sleep(cfg.idle_seconds)  # the measurement itself: CPU used while nothing happens
    used = (cpu_ticks(broker.pids) - before) / TICK
    share = used / (time.monotonic() - t)
    RAW["idle_credentials"] = {"listening_s": broker.listening_s, "ready_s": ready,
                               "cpu_s": used, "share": share, "rss_kib": rss}
    PROCS.stop(broker.proc)
    PROCS.stop(sim.proc)
    section("1,000 credentials idle", [
        "| figure | value | target |", "|---|---:|---|",
        f"| start until the socket listens | {broker.listening_s:.1f} s | — |",
        f"| start until all 1,000 were granted (fresh) | {ready:.1f} s | — |",
        f"| CPU while idle, over {cfg.idle_seconds} s | {used * 1000:.0f} ms = "
        f"{share * 100:.3f}% of a core ({used * 60 / cfg.idle_seconds * 1000:.0f} ms/min) "
        f"| < 1% |",
        f"| RSS with 1,000 credentials | {rss / 1024:.1f} MiB | — |",
        "", "Simulator access tokens live 1 h here, so no refresh falls in the window."])


def scenario_rss(servers, sim, cfg):
    b = servers["broker"]
    idle, pss = RAW["rss_at_start"], RAW["pss_at_start"]
    log(f"{cfg.idle_conns} idle connections")
    held = {}
    for name, s in servers.items():
        base = rss_kib(s.pids)
        p = PROCS.start(["taskset", "-c", CLIENT_CPU, f"{BIN}/loadgen", "idle", "--unix",
                         s.sock, "--get", TOKEN, "--connections", str(cfg.idle_conns)],
                        stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        count = int(line.split()[1]) if line.startswith("ready") else 0
        with_conns = rss_kib(s.pids)
        PROCS.stop(p)
        held[name] = (count, base, with_conns)
    log(f"mixed load for {cfg.soak_seconds} s")
    warm = loadgen("--unix", b.sock, "--get", TOKEN, "--get", ECHO, "--connections", "64",
                   "--duration", f"{cfg.soak_warmup}s", "--verify")
    after_warm = rss_kib(b.pids)
    soak = loadgen("--unix", b.sock, "--get", TOKEN, "--get", ECHO, "--post", f"{ECHO}:1024",
                   "--connections", "64", "--duration", f"{cfg.soak_seconds}s", "--verify")
    after_soak = rss_kib(b.pids)
    RAW["rss"] = {"idle": idle, "held": held, "warm": warm, "soak": soak,
                  "after_warm_kib": after_warm, "after_soak_kib": after_soak}
    per = lambda name: (held[name][2] - held[name][1]) / max(held[name][0], 1)
    bad = soak["token_bad_json"] + soak["token_expired"] + soak["token_went_back"]
    section("Memory", [
        "| figure | broker | nginx | target (broker) |", "|---|---:|---:|---|",
        f"| RSS idle (at start: 3 credentials — Privicore and the two origin ones —, one token fetched) | {idle['broker'] / 1024:.1f} MiB | "
        f"{idle['nginx'] / 1024:.1f} MiB (master + worker) | < 10 MiB |",
        f"| PSS idle (shared pages split among their users) | {pss['broker'] / 1024:.1f} MiB | "
        f"{pss['nginx'] / 1024:.1f} MiB | — |",
        f"| idle connections held | {held['broker'][0]:,} | {held['nginx'][0]:,} | "
        f"{cfg.idle_conns:,} |",
        f"| RSS with them | {held['broker'][2] / 1024:.1f} MiB | {held['nginx'][2] / 1024:.1f} MiB | — |",
        f"| per idle connection | {per('broker') / 1:.1f} KiB | {per('nginx'):.1f} KiB | < 20 KiB |",
        f"| RSS after {cfg.soak_warmup} s of mixed load | {after_warm / 1024:.1f} MiB | — | — |",
        f"| RSS after {cfg.soak_seconds} s more ({soak['requests']:,} requests, "
        f"{soak['errors']} errors, {bad} bad tokens) | {after_soak / 1024:.1f} MiB | — | "
        f"no growth |",
        "", "Mixed load: 64 connections cycling token fetch, proxied GET and proxied 1 KiB POST "
        "(loadgen, every token checked)."])


# ---------------------------------------------------------------------------------------------
# The open-loop latency rows offer this many requests per second over 256 connections: a
# quarter of what either server answers on one core in the closed loop, so neither queues.
OPEN_RATE = 50_000


def scenario_token_open(servers, cfg):
    """p99 at a fixed offered load. The closed-loop rows keep every connection's request in
    flight, so by Little's law their mean latency is connections ÷ rate (256 ÷ 220k req/s =
    1.2 ms) and a p99 under 1 ms at 256 connections cannot be had there by any server. Here
    loadgen sends on a schedule instead (--rate), and a late answer delays the latency of the
    requests due after it (no coordinated omission)."""
    results, rows = {}, []
    for transport in ("unix", "tcp"):
        label = f"token, {transport}, 256 conn, {OPEN_RATE:,} req/s offered"
        log(label)
        where = lambda s, t=transport: (["--unix", s.sock] if t == "unix"
                                        else ["--tcp", f"127.0.0.1:{s.port}", "--header",
                                              "X-Token-Broker: 1"])
        results[label] = ab(servers, cfg.reps, lambda s, w=where: loadgen(
            *w(s), "--get", TOKEN, "--connections", "256", "--duration", f"{cfg.seconds}s",
            "--rate", str(OPEN_RATE)))
        rows.append(label)
    RAW["token_open"] = results
    lines = ["| scenario | server | req/s carried | p50 | p90 | p99 | max | CPU µs/req | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    ms = lambda runs, k: f"{med(runs, k) / 1000:.2f} ms"
    for label in rows:
        for name, runs in results[label].items():
            lines.append(f"| {label} | {name} | {med(runs, 'rps'):,.0f} | {ms(runs, 'p50_us')} | "
                         f"{ms(runs, 'p90_us')} | {ms(runs, 'p99_us')} | {ms(runs, 'max_us')} | "
                         f"{med(runs, 'cpu_us_per_req'):.1f} | "
                         f"{sum(r['errors'] + r['non_2xx'] for r in runs)} |")
    lines += ["", "loadgen, open loop: each connection's requests are due on a schedule that "
              f"spreads {OPEN_RATE:,} req/s evenly over time and the 256 connections; latency "
              "counts from when a request was due. Medians of the A/B rounds. The closed-loop "
              "rows above measure the most a server answers; these measure the wait at a load "
              "both carry without queueing."]
    section("Token fetch latency at a fixed load", lines)


def targets():
    """The issue's targets, judged from this run's figures (missing ones say so)."""
    rows = []

    def row(what, value, ok):
        rows.append(f"| {what} | {value} | {'met' if ok else '**missed**'} |")

    tok = RAW.get("token")
    if tok:
        ratios = {k: med(v["broker"], "rps") / med(v["nginx"], "rps") for k, v in tok.items()}
        cpu = {k: med(v["broker"], "cpu_us_per_req") / med(v["nginx"], "cpu_us_per_req")
               for k, v in tok.items()}
        row("token fetch req/s ≥ nginx (every row)",
            f"broker/nginx {min(ratios.values()):.2f}–{max(ratios.values()):.2f}",
            min(ratios.values()) >= 1)
        row("token fetch CPU/request ≤ nginx (every row)",
            f"broker/nginx {min(cpu.values()):.2f}–{max(cpu.values()):.2f}", max(cpu.values()) <= 1)
        for k in ("token, tcp, 256 conn", "token, unix, 256 conn (loadgen)"):
            if k in tok:
                p = med(tok[k]["broker"], "p99_us")
                row(f"p99 < 1 ms at 256 connections ({k.split(', ')[1]}, closed loop)",
                    f"{p / 1000:.2f} ms", p < 1000)
    for k, v in RAW.get("token_open", {}).items():
        p, pn = med(v["broker"], "p99_us"), med(v["nginx"], "p99_us")
        row(f"p99 < 1 ms at 256 connections ({k.split(', ')[1]}, {OPEN_RATE:,} req/s offered)",
            f"{p / 1000:.2f} ms (nginx {pn / 1000:.2f})", p < 1000)
    # Proxy and streaming are judged on the origin rows: there the upstream is not the bottleneck
    # (the simulator rows measure privicore-sim as much as the proxies).
    prox = {k: v for k, v in RAW.get("proxy", {}).items() if "(nginx origin)" in k}
    if prox:
        r = min(med(v["broker"], "rps") / med(v["nginx"], "rps") for v in prox.values())
        row("proxy req/s ≥ nginx proxy_pass (origin rows)", f"broker/nginx ≥ {r:.2f}", r >= 1)
    st = {k: v for k, v in RAW.get("streaming", {}).items() if "(origin)" in k}
    for label, v in st.items():
        g = med(v["broker"], "gb_per_s")
        row(f"proxied {label} ≥ 1 GB/s", f"{g:.2f} GB/s", g >= 1)
    storm = RAW.get("storm")
    if storm:
        row("refresh storm: exactly 1 refresh", str(storm["sim_refreshes"]),
            storm["sim_refreshes"] == 1)
        errs = storm["errors"] + storm["non_2xx"]
        row("refresh storm: 0 errors", str(errs), errs == 0)
    rss = RAW.get("rss")
    if rss:
        idle = rss["idle"]["broker"] / 1024
        row("RSS idle < 10 MiB", f"{idle:.1f} MiB", idle < 10)
        n, base, held = rss["held"]["broker"]
        per = (held - base) / max(n, 1)
        row("< 20 KiB per idle connection", f"{per:.1f} KiB ({n:,} held)", per < 20)
        growth = (rss["after_soak_kib"] - rss["after_warm_kib"]) / 1024
        row("no RSS growth over the long mixed load", f"{growth:+.1f} MiB", growth <= 1)
    ic = RAW.get("idle_credentials")
    if ic:
        row("idle CPU with 1,000 credentials < 1% of a core", f"{ic['share'] * 100:.3f}%",
            ic["share"] < 0.01)
    for title in RAW.get("failures", {}):
        rows.append(f"| {title} | failed in this run | **not measured** |")
    return ["| target | this run | verdict |", "|---|---|---|"] + rows


def attempt(title, fn):
    """Runs one scenario; a failure is reported in its section and the run goes on."""
    before = list(PROCS.live)
    try:
        fn()
    except Exception as e:  # noqa: BLE001 — any failure belongs in the report
        log(f"{title} failed: {e}")
        RAW.setdefault("failures", {})[title] = str(e)
        section(title, [f"**Failed in this run:** `{e}`"])
    finally:
        for p in [p for p in PROCS.live if p not in before]:  # what the scenario started
            PROCS.stop(p)


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    ver = lambda argv: subprocess.run(argv, capture_output=True, text=True).stdout.strip() or \
        subprocess.run(argv, capture_output=True, text=True).stderr.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_mib": mem, "kernel": os.uname().release,
            "nginx": ver(["nginx", "-v"]), "h2load": ver(["h2load", "--version"]),
            "wrk": ver(["wrk", "-v"]).splitlines()[0], "curl": ver(["curl", "--version"])
            .splitlines()[0]}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def smoke(build):
    """ctest bench_loadgen_smoke: loadgen against privicore-sim and tokenbrokerd for a second,
    every token checked; then against a fake broker handing out an expired, unknown token, which
    it must flag; then (with nginx installed) the broker's proxy to the benchmark's origin: small
    GET and POST, 1 MiB up and down, byte counts checked. It asserts correctness, not speed."""
    global BIN, CLIENT_CPU
    import http.server
    import socketserver
    import threading
    BIN, CLIENT_CPU = os.path.join(ROOT, build, "bin"), None
    work = tempfile.mkdtemp(prefix="tbsmoke.")
    try:
        sim = Sim(work, "sim", cpu=None)
        origin = Origin(work, 1 << 20, cpu=None) if shutil.which("nginx") else None
        broker = Broker(work, "broker", sim, cpu=None, origin=origin)
        r = loadgen("--unix", broker.sock, "--get", TOKEN, "--connections", "4", "--duration",
                    "1s", "--verify", "--sim", sim.url)
        print(json.dumps(r))
        assert r["requests"] > 0 and r["tokens_checked"] == r["requests"], r
        assert r["errors"] == r["non_2xx"] == r["connect_errors"] == 0, r
        assert r["token_bad_json"] == r["token_expired"] == r["token_went_back"] == 0, r
        assert r["distinct_tokens"] >= 1 and r["sim_rejected_tokens"] == 0, r

        body = json.dumps({"access_token": "not-issued-by-the-simulator", "token_type": "bearer",
                           "expires_at": "2001-01-01T00:00:00Z", "expires_in": 0, "scope": "all"})

        class Fake(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

            def address_string(self):
                return "unix"

        fake_sock = os.path.join(work, "fake.sock")
        srv = socketserver.ThreadingUnixStreamServer(fake_sock, Fake)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        r = loadgen("--unix", fake_sock, "--get", TOKEN, "--duration", "300ms", "--verify",
                    "--sim", sim.url)
        srv.shutdown()
        print(json.dumps(r))
        assert r["tokens_checked"] > 0 and r["token_expired"] == r["tokens_checked"], r
        assert r["sim_rejected_tokens"] == 1 and r["sim_verdicts"] == {"unknown": 1}, r
        if origin:
            smoke_origin(broker, origin)
        else:
            print("nginx is not installed: the origin path is not checked")
        print("loadgen smoke: ok")
    finally:
        PROCS.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def smoke_origin(broker, origin):
    """The broker's calls to the origin: the oauth2 token injected (the origin answers 401
    without it), bodies whole both ways."""
    for method, body in (("GET", None), ("POST", b"x" * 1024)):
        status, text = http_get(SMALL, unix=broker.sock, method=method, body=body)
        assert status == 200 and text == SMALL_BODY, (method, status, text)
    assert http_get("/small", tcp=("127.0.0.1", origin.port))[0] == 401
    n = origin.download_bytes
    status, text = http_get("/v1/proxy/sink/upload", unix=broker.sock, method="POST",
                            body=b"\0" * n, headers={"Content-Type": "application/octet-stream"})
    assert status == 200 and json.loads(text) == {"bytes": n}, (status, text)
    status, text = http_get("/v1/proxy/origin/download", unix=broker.sock)
    assert status == 200 and len(text) == n, (status, len(text))
    print(f"origin through the broker: small GET/POST, {n >> 20} MiB up and down: ok")


def main():
    global BIN, CFG
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("BENCH_BUILD_DIR", "build-release"))
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""),
                    help="comma list of: token,proxy,streaming,storm,credentials,rss")
    ap.add_argument("--out", default=None)
    ap.add_argument("--smoke", action="store_true", help="the ctest smoke check, nothing else")
    cfg = ap.parse_args()
    if cfg.smoke:
        return smoke(cfg.build)
    CFG = cfg
    BIN = os.path.join(ROOT, cfg.build, "bin")
    q = cfg.quick
    cfg.seconds = 2 if q else 5
    cfg.reps = 3
    cfg.stream_bytes = (256 if q else 1024) << 20
    cfg.stream_reps = 1 if q else 3
    cfg.storm_conns = 2000 if q else 10000
    cfg.idle_seconds = 15 if q else 60
    cfg.idle_conns = 2000 if q else 10000
    cfg.soak_warmup = 10 if q else 60
    cfg.soak_seconds = 30 if q else 600
    only = set(filter(None, cfg.only.split(",")))
    want = lambda s: not only or s in only

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < max(cfg.storm_conns, cfg.idle_conns) + 1000:  # per process: client and server
        log(f"warning: the fd limit ({hard}) is low for {cfg.storm_conns} clients")
    for tool in ("nginx", "h2load", "wrk", "curl", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (scripts/install-deps --bench installs it)")

    cfg.work = tempfile.mkdtemp(prefix="tbbench.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = loadavg()
    try:
        log(f"work dir {cfg.work}, binaries {BIN}, {'quick' if q else 'full'} run")
        # Tokens live an hour: nginx injects the token it was given at start, which must stay
        # valid for the whole run (a refresh would supersede it and turn nginx's calls into 401s).
        sim = Sim(cfg.work, "sim", ttl="1h")
        origin = Origin(cfg.work, cfg.stream_bytes)
        broker = Broker(cfg.work, "broker", sim, origin=origin)
        status, token_json = http_get(TOKEN, unix=broker.sock)
        token = json.loads(token_json)["access_token"]
        nginx = Nginx(cfg.work, token_json, sim, token, workers=1, origin=origin)
        servers = {"broker": broker, "nginx": nginx}
        # Idle memory: each server up, one token fetched (the broker's first was, above).
        http_get(TOKEN, unix=nginx.sock)
        RAW["rss_at_start"] = {k: rss_kib(s.pids) for k, s in servers.items()}
        RAW["pss_at_start"] = {k: pss_kib(s.pids) for k, s in servers.items()}
        if want("token"):
            attempt("Token fetch", lambda: scenario_token(servers, cfg))
            attempt("Token fetch latency at a fixed load",
                    lambda: scenario_token_open(servers, cfg))
            attempt("Can loadgen's figures be trusted?",
                    lambda: scenario_loadgen_check(servers, cfg))
        if want("proxy"):
            attempt("Proxy", lambda: scenario_proxy(servers, sim, origin, cfg))
        if want("streaming"):
            attempt("Streaming through the proxy",
                    lambda: scenario_streaming(servers, sim, origin, cfg))
        if want("rss"):
            attempt("Memory", lambda: scenario_rss(servers, sim, cfg))
        PROCS.stop(nginx.proc)
        PROCS.stop(broker.proc)
        PROCS.stop(sim.proc)
        PROCS.stop(origin.sink)
        PROCS.stop(origin.proc)
        if want("storm"):
            attempt("Refresh storm", lambda: scenario_storm(cfg))
        if want("credentials"):
            attempt("1,000 credentials idle", lambda: scenario_idle_credentials(cfg))
    finally:
        PROCS.stop_all()
        shutil.rmtree(cfg.work, ignore_errors=True)
    write_report(cfg, started, load_before, loadavg())


def write_report(cfg, started, load_before, load_after):
    m = machine()
    kind = "quick (BENCH_QUICK=1)" if cfg.quick else "full"
    head = [f"# Benchmark {started:%Y-%m-%d %H:%M} UTC ({kind})", "",
            f"- machine: {m['cpu']}, {m['cores']} cores, {m['mem_mib'] // 1024} GiB, "
            f"Linux {m['kernel']}; **shared with other builds and tests** — load average "
            f"{load_before} before, {load_after} after (1/5/15 min)",
            f"- tokenbrokerd from `{cfg.build}` (one io_context thread), nginx "
            f"{m['nginx'].split('/')[-1]} with `worker_processes 1`; server on core "
            f"{SERVER_CPU}, clients, privicore-sim and the origin on core {CLIENT_CPU} (taskset)",
            f"- tools: {m['h2load']}, {m['wrk']}, {m['curl']}, bench/loadgen",
            f"- each A/B scenario: {cfg.reps} rounds of broker then nginx, {cfg.seconds} s each; "
            "medians shown", "- written by `bench/bench.py` from this run; not edited by hand", ""]
    text = "\n".join(head) + "\n## Targets\n\n" + "\n".join(targets()) + "\n\n" + \
        "\n".join(REPORT)
    with open(os.path.join(HERE, "analysis.md")) as f:
        text += "\n" + f.read()
    text += "\n<details><summary>raw figures (JSON)</summary>\n\n```json\n" + \
        json.dumps(RAW, indent=1, default=str) + "\n```\n</details>\n"
    name = f"{started:%Y-%m-%d}" + ("-quick" if cfg.quick else "") + \
        (f"-only-{cfg.only.replace(',', '-')}" if cfg.only else "")
    out = cfg.out or os.path.join(HERE, "results", f"{name}.md")
    if cfg.out is None and os.path.exists(out):  # an earlier run of the same day stays
        out = os.path.join(HERE, "results", f"{name}-{started:%H%M}.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    log(f"results in {out}")
    if cfg.out is None and not cfg.only:  # a whole run to keep: the README shows its verdicts
        readme = os.path.join(ROOT, "README.md")
        with open(readme) as f:
            doc = f.read()
        begin, end = "<!-- bench:begin -->\n", "<!-- bench:end -->"
        if begin in doc and end in doc:
            rel = os.path.relpath(out, ROOT)
            block = (f"From [{rel}]({rel}), a {kind} run on a shared 2-core machine (load "
                     f"{load_before}):\n\n" + "\n".join(targets()) + "\n")
            doc = doc[:doc.index(begin) + len(begin)] + block + doc[doc.index(end):]
            with open(readme, "w") as f:
                f.write(doc)
    print(text)


if __name__ == "__main__":
    main()
