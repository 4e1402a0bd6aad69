#!/usr/bin/env python3
"""trustgate's bench: every scenario of the performance targets (SPEC §8),
measured on loopback against peers started beside trustgate in the same run.

    python3 bench/run.py [--build DIR] [--out DIR]      (make bench)
    BENCH_QUICK=1 python3 bench/run.py ...              (every scenario, small)

Writes OUT/latest.md, OUT/latest.json and OUT/latest.png. Every figure is the
median of RUNS alternated runs; every comparison is a ratio of medians from
this one invocation. Processes are started here on free loopback ports and
stopped by PID (their process group); the work folder is removed at the end
unless BENCH_KEEP=1. See bench/README.md.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = int(os.environ.get("RUNS", "1" if QUICK else "5"))
SECS = float(os.environ.get("SECS", "1" if QUICK else "5"))
WARMUP = float(os.environ.get("WARMUP", "0.3" if QUICK else "1"))
FILL_N = int(os.environ.get("FILL_N", "20000" if QUICK else "10000000"))
SMALL_SET = 1000
SPREAD_WARM = float(os.environ.get("SPREAD_WARM", "1" if QUICK else "30"))
CRL_N = int(os.environ.get("CRL_N", "50000" if QUICK else "1000000"))
FLIPS = int(os.environ.get("FLIPS", "2" if QUICK else "20"))
IDLE_N = int(os.environ.get("IDLE_N", "500" if QUICK else "10000"))
CONNS = 8
SPEED_SECS = 1 if QUICK else 3
NOFILE = 65536

SUSPENDED = "urn:gdhk-mr:svcstatus:suspended"
GRANTED = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
ECC_SERVICE = "HK Organisational e-Cert (ECDSA)"

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = []  # every command line run, for the report


def log(msg):
    print(f"bench: {msg}", flush=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def note_cmd(argv, cwd=None):
    line = " ".join(shlex.quote(str(a)) for a in argv)
    if cwd:
        line = f"(cd {shlex.quote(str(cwd))} && {line})"
    if line not in COMMANDS:
        COMMANDS.append(line)


def run(argv, cwd=None, check=True, timeout=None, capture=True):
    """Runs a command to its end; returns its stdout (text)."""
    note_cmd(argv, cwd)
    p = subprocess.run([str(a) for a in argv], cwd=cwd, timeout=timeout, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and p.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {p.returncode}: {(p.stderr or '')[-2000:]}")
    return p.stdout if capture else ""


class Proc:
    """A server started here: its own process group, stopped by PID."""

    def __init__(self, name, argv, cwd, logpath, session=True):
        self.name = name
        note_cmd(argv, cwd)
        self.logpath = logpath
        self.log = open(logpath, "ab")
        self.p = subprocess.Popen([str(a) for a in argv], cwd=cwd, stdout=self.log,
                                  stderr=subprocess.STDOUT, start_new_session=session)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def status(self, key):
        """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return None

    def kill(self, sig):
        """Signals the process's own group (it and its children), or only the
        process while it is still in ours."""
        try:
            if os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self):
        if self.p.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.p.wait()
        self.log.close()


def free_port(n=1):
    """A free loopback port p with p..p+n-1 all free."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
        s.close()
        if base + n > 65535:
            continue
        ok = True
        for q in range(base, base + n):
            t = socket.socket()
            try:
                t.bind(("127.0.0.1", q))
            except OSError:
                ok = False
            finally:
                t.close()
        if ok:
            return base
    raise RuntimeError("no free loopback ports")


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(url, proc, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited; see {proc.logpath}")
        try:
            if http_get(url + "/readyz", 2)[0] == 200:
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} not ready within {timeout} s; see {proc.logpath}")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Bench:
    def __init__(self, args):
        self.build = os.path.abspath(args.build)
        self.out = os.path.abspath(args.out)
        self.tg = os.path.join(self.build, "trustgate")
        self.tbbin = os.path.join(self.build, "trustgate-bench")
        self.fill = os.path.join(self.build, "trustgate-bench-fill")
        self.mkcrl = os.path.join(self.build, "tests", "mkcrl")
        base = os.path.join(TOP, "var")
        os.makedirs(base, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="bench-", dir=base)
        os.chmod(self.work, 0o755)  # nginx workers may run as nobody
        self.world = os.path.join(self.work, "world")
        self.procs = []
        self.n = 0
        self.scen = []  # the report's table
        self.raw = {}  # every run's figures
        self.seq = 100  # trust-list sequence numbers of the flip lists

    # ---- processes -----------------------------------------------------

    def start(self, name, argv, cwd=None, session=True):
        self.n += 1
        p = Proc(name, argv, cwd or self.work, os.path.join(self.work, f"{self.n:02d}-{name}.log"),
                 session)
        self.procs.append(p)
        return p

    def stop(self, p):
        p.stop()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)

    # ---- the world -----------------------------------------------------

    def make_world(self):
        port = free_port(5)
        run([self.tg, "demo", "--port", port, self.world])
        self.demo_port = port
        w = self.world
        self.fill_txt = os.path.join(self.work, "fill.txt")
        t0 = time.monotonic()
        out = run([self.fill, "--cache", os.path.join(w, "cache"), "--issuer",
                   os.path.join(w, "hk/ecc-ca/ca.pem"), "--key", os.path.join(w, "hk/ecc-ca/ca.key"),
                   "--count", FILL_N, "--map-size-mb", self.map_mb(), "--certids-out",
                   self.fill_txt, "--label", "fill"], timeout=3600)
        self.fill_s = time.monotonic() - t0
        os.sync()  # let the fill's page writeback end before anything is measured
        time.sleep(1 if QUICK else 5)
        self.fill_line = (out or "").strip().splitlines()[-1:] or [""]
        lines = [l for l in open(self.fill_txt) if l.strip() and not l.startswith("#")]
        f = lines[0].split()
        start = f[3].split("+")[0]
        self.one_txt = os.path.join(self.work, "one.txt")
        with open(self.one_txt, "w") as o:
            o.write(f"{f[0]} {f[1]} {f[2]} {start} {f[4]} fill-one\n")
        self.demo_ids = os.path.join(w, "certids.txt")
        log(f"world made; {FILL_N} cached answers filled in {self.fill_s:.1f} s")

    def map_mb(self):
        return 1024 if FILL_N <= 100000 else 16384

    def ini(self, name, workers, hk_mode="relay", hk_source=None, log_level="warn"):
        port = free_port()
        path = os.path.join(self.world, f"{name}.ini")
        src = hk_source or "lists/hk.xml"
        with open(path, "w") as f:
            f.write(f"""; written by bench/run.py
[server]
listen = 127.0.0.1:{port}
workers = {workers}
max_connections = {IDLE_N + 10000}
log_level = {log_level}
admin_socket = {name}.sock

[cache]
path = cache
map_size_mb = {self.map_mb()}

[upstream]
timeout_ms = 3000
allow_file_urls = yes

[signer gd]
cert = signers/gd-responder.pem
key = signers/gd-responder.key

[signer hk]
cert = signers/hk-responder.pem
key = signers/hk-responder.key

[trustlist gd]
source = lists/gd.xml
operator_cert = operators/gd-operator.pem
refresh_s = 3600
signer = gd
mode = sign

[trustlist hk]
source = {src}
operator_cert = operators/hk-operator.pem
refresh_s = 3600
signer = hk
mode = {hk_mode}
""")
        return path, port

    def serve(self, name, workers, **kw):
        ini, port = self.ini(name, workers, **kw)
        p = self.start(name, [self.tg, "serve", "-c", ini], cwd=self.world)
        p.url = f"http://127.0.0.1:{port}"
        p.sock = os.path.join(self.world, f"{name}.sock")
        wait_ready(p.url, p)
        return p

    # ---- load tools ----------------------------------------------------

    def tb(self, label, url, ids, *extra, mode="load", check=True):
        js = os.path.join(self.work, f"tb-{label}-{len(self.raw.get(label, []))}.json")
        argv = [self.tbbin, mode, "--url", url, "--certids", ids, "--json", js, "--label", label]
        if mode == "load":
            argv += ["--duration", SECS, "--warmup", WARMUP]
        argv += list(extra)
        note_cmd(argv)
        p = subprocess.run([str(a) for a in argv], text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=600)
        if p.returncode not in (0, 1) or not os.path.exists(js):
            raise RuntimeError(f"trustgate-bench {label}: exit {p.returncode}: {p.stderr[-1500:]}")
        r = json.load(open(js))
        r["exit"] = p.returncode
        if check and p.returncode != 0:
            log(f"{label}: {r.get('errors_total', '?')} errors: {json.dumps(r.get('errors'))}")
        self.raw.setdefault(label, []).append(r)
        return r

    def wrk(self, label, url):
        argv = ["wrk", "-t1", f"-c{CONNS}", f"-d{max(1, int(round(SECS)))}s", url]
        out = run(argv, timeout=120)
        m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
        non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        sockerr = re.search(r"Socket errors: (.*)", out)
        r = {"throughput_rps": float(m.group(1)) if m else None,
             "non2xx": int(non2xx.group(1)) if non2xx else 0,
             "socket_errors": sockerr.group(1) if sockerr else None}
        self.raw.setdefault(label, []).append(r)
        return r

    def get_url(self, base, path="/ocsp"):
        """The RFC 5019 GET URL of the one cached CertID (built by openssl)."""
        f = open(self.one_txt).read().split()
        serial = "0x" + f[3]
        req = os.path.join(self.work, "one-req.der")
        run(["openssl", "ocsp", "-issuer", os.path.join(self.world, "hk/ecc-ca/ca.pem"), "-serial",
             serial, "-no_nonce", "-reqout", req])
        import base64
        return base + path + "/" + base64.b64encode(open(req, "rb").read()).decode()

    # ---- scenario records ----------------------------------------------

    def record(self, sid, name, measured, goal, ok, detail=""):
        mark = "—" if ok is None else ("pass" if ok else "short")
        self.scen.append({"id": sid, "scenario": name, "measured": measured, "goal": goal,
                          "ok": ok, "mark": mark, "detail": detail})
        log(f"{sid}: {measured} (goal {goal}): {mark}")

    # ---- scenarios -----------------------------------------------------

    def peers_nginx(self, der):
        d = os.path.join(self.work, "nginx")
        os.makedirs(os.path.join(d, "html"), exist_ok=True)
        os.chmod(d, 0o755)
        os.chmod(os.path.join(d, "html"), 0o755)
        with open(os.path.join(d, "html", "ocsp.der"), "wb") as f:
            f.write(der)
        os.chmod(os.path.join(d, "html", "ocsp.der"), 0o644)
        port = free_port()
        conf = os.path.join(d, "nginx.conf")
        user = "user root;\n" if os.geteuid() == 0 else ""
        with open(conf, "w") as f:
            f.write(f"""{user}worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {IDLE_N + 1024}; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp-body;
    proxy_temp_path {d}/tmp-proxy;
    fastcgi_temp_path {d}/tmp-fcgi;
    uwsgi_temp_path {d}/tmp-uwsgi;
    scgi_temp_path {d}/tmp-scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            root {d}/html;
            default_type application/ocsp-response;
            try_files /ocsp.der =404;
        }}
    }}
}}
""")
        p = self.start("nginx", ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf])
        p.url = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            try:
                if http_get(p.url + "/x")[0] == 200:
                    return p
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start; see " + p.logpath)

    def s_cached(self):
        """Cached GET and POST vs nginx; wrk cross-check; open loop at 50 %."""
        tg = self.serve("tg-w1", 1)
        get_url = self.get_url(tg.url)
        st, der = http_get(get_url)
        if st != 200:
            raise RuntimeError(f"cached GET answered {st}")
        ng = self.peers_nginx(der)
        url_tg, url_ng = tg.url + "/ocsp", ng.url + "/ocsp"
        for _ in range(RUNS):
            self.tb("get-tg", url_tg, self.one_txt, "--connections", CONNS)
            self.tb("get-nginx", url_ng, self.one_txt, "--connections", CONNS)
            self.wrk("wrk-get-tg", get_url)
            self.wrk("wrk-get-nginx", ng.url + get_url[len(tg.url):])
            self.tb("post-tg", url_tg, self.one_txt, "--connections", CONNS, "--post", 1)
        g_tg = median(r["throughput_rps"] for r in self.raw["get-tg"])
        g_ng = median(r["throughput_rps"] for r in self.raw["get-nginx"])
        w_tg = median(r["throughput_rps"] for r in self.raw["wrk-get-tg"])
        w_ng = median(r["throughput_rps"] for r in self.raw["wrk-get-nginx"])
        p_tg = median(r["throughput_rps"] for r in self.raw["post-tg"])
        self.fig = {"get_tg": g_tg, "get_nginx": g_ng, "wrk_tg": w_tg, "wrk_nginx": w_ng,
                    "post_tg": p_tg}
        self.record("cached-get", "cached OCSP GET, keep-alive, 8 connections, 1 worker (nginx: 1 worker)",
                    f"{g_tg:,.0f} req/s = {g_tg / g_ng:.2f} × nginx ({g_ng:,.0f})",
                    "≥ 1.0 × nginx", g_tg >= g_ng)
        agree = abs(g_tg - w_tg) / w_tg <= 0.15 if w_tg else False
        self.record("cross-check", "the same cached GET driven by wrk",
                    f"trustgate-bench {g_tg:,.0f} vs wrk {w_tg:,.0f} req/s ({(g_tg / w_tg - 1) * 100:+.1f} %); "
                    f"nginx: {g_ng:,.0f} vs {w_ng:,.0f}",
                    "agree within 15 %", agree)
        rate = 0.5 * g_ng
        for _ in range(RUNS):
            self.tb("open-tg", url_tg, self.one_txt, "--connections", CONNS, "--rate", int(rate))
            self.tb("open-nginx", url_ng, self.one_txt, "--connections", CONNS, "--rate", int(rate))
        p99 = median(r["latency_us"]["p99"] for r in self.raw["open-tg"])
        p99n = median(r["latency_us"]["p99"] for r in self.raw["open-nginx"])
        ach = median(r.get("rate_achieved") for r in self.raw["open-tg"])
        self.record("open-loop", f"cached GET, open loop at 50 % of nginx's rate ({rate:,.0f} req/s)",
                    f"p99 {p99 / 1000:.3f} ms (nginx {p99n / 1000:.3f} ms; achieved {ach:,.0f} req/s)",
                    "p99 ≤ 1 ms", p99 <= 1000)
        self.record("cached-post", "cached OCSP POST, same",
                    f"{p_tg:,.0f} req/s = {p_tg / g_tg:.2f} × the GET figure", "≥ 0.9 × GET",
                    p_tg >= 0.9 * g_tg)
        self.s_idle(tg)
        self.s_spread(tg)
        self.stop(ng)
        self.stop(tg)

    def s_spread(self, tg):
        url = tg.url + "/ocsp"
        # one untimed pass first: the first lookups of each page of the big
        # set are page faults (mapping the cache file), a start-up cost
        self.tb("spread-warm", url, self.fill_txt, "--connections", CONNS, "--duration", SPREAD_WARM,
                "--warmup", 0)
        for _ in range(RUNS):
            self.tb("spread-1k", url, self.fill_txt, "--connections", CONNS, "--limit-set", SMALL_SET)
            self.tb("spread-all", url, self.fill_txt, "--connections", CONNS)
        a = median(r["throughput_rps"] for r in self.raw["spread-1k"])
        b = median(r["throughput_rps"] for r in self.raw["spread-all"])
        self.record("spread", f"GET over {FILL_N:,} cached entries vs over {SMALL_SET:,}",
                    f"{b:,.0f} vs {a:,.0f} req/s ({(b / a - 1) * 100:+.1f} %)", "within 10 %",
                    abs(b / a - 1) <= 0.10)

    def open_idle(self, url, n):
        host, port = url.split("//")[1].split(":")
        socks = []
        req = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        for _ in range(n):
            s = socket.create_connection((host, int(port)))
            s.sendall(req)
            socks.append(s)
        for s in socks:  # read each answer: the connection is then idle, kept alive
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("idle connection closed by the server")
                buf += chunk
        return socks

    def s_idle(self, tg):
        # RssAnon: the connections' memory (heap); VmRSS also counts the
        # cache's mapped pages, which the lookups touch meanwhile.
        url = tg.url + "/ocsp"
        rss = {"anon_without": [], "anon_with": [], "rss_without": [], "rss_with": []}
        for _ in range(RUNS):
            self.tb("idle-without", url, self.one_txt, "--connections", CONNS)
            rss["anon_without"].append(tg.status("RssAnon"))
            rss["rss_without"].append(tg.status("VmRSS"))
            socks = self.open_idle(tg.url, IDLE_N)
            time.sleep(0.2)
            self.tb("idle-with", url, self.one_txt, "--connections", CONNS)
            rss["anon_with"].append(tg.status("RssAnon"))
            rss["rss_with"].append(tg.status("VmRSS"))
            for s in socks:
                s.close()
            time.sleep(0.3)
        a = median(r["throughput_rps"] for r in self.raw["idle-without"])
        b = median(r["throughput_rps"] for r in self.raw["idle-with"])
        # from the first baseline: memory freed when the connections close
        # stays with malloc, so later baselines already include it
        extra = (max(rss["anon_with"]) - rss["anon_without"][0]) / 1024
        extra_rss = (max(rss["rss_with"]) - rss["rss_without"][0]) / 1024
        self.raw["idle-memory-kib"] = rss
        self.record("idle", f"{IDLE_N:,} idle keep-alive connections held open during the cached GET",
                    f"+{extra:.1f} MiB (RssAnon; VmRSS +{extra_rss:.1f} MiB); "
                    f"{b:,.0f} vs {a:,.0f} req/s ({(b / a - 1) * 100:+.1f} %)",
                    "≤ 64 MiB, throughput within 10 %", extra <= 64 and abs(b / a - 1) <= 0.10)

    def s_openssl(self):
        tg = self.serve("tg-w2", 2)
        url_tg = tg.url + "/ocsp"
        peers = {}
        lines = open(os.path.join(self.world, "upstreams.txt")).read().splitlines()
        for key, slug in (("p256", "hk/ecc-ca"), ("rsa", "hk/rsa-ca")):
            line = next(l for l in lines if f"{slug}/index.txt" in l)
            argv = shlex.split(line.split("\t", 1)[1])
            port = free_port()
            i = argv.index("-port")
            argv[i + 1] = str(port)
            argv += ["-multi", "2"]
            # -multi makes its own process group (setpgid fails in a
            # session leader, so no new session here); stop() signals it
            p = self.start(f"openssl-ocsp-{key}", argv, cwd=self.world, session=False)
            p.url = f"http://127.0.0.1:{port}"
            peers[key] = (p, slug)
        # openssl ocsp 3.0 spins when a connection closes without a request:
        # never probe it; give it a moment, trustgate-bench retries refusals.
        time.sleep(1.0)
        for key, (p, slug) in peers.items():
            if not p.alive():
                raise RuntimeError(f"openssl ocsp ({key}) exited; see {p.logpath}")
        for _ in range(RUNS):
            self.tb("w2-tg", url_tg, self.one_txt, "--connections", CONNS)
            for key, (p, slug) in peers.items():
                self.tb(f"openssl-{key}", p.url + "/", self.demo_ids, "--connections", CONNS, "--close",
                        "--select", f"{slug}/ee-good/sha1")
        t = median(r["throughput_rps"] for r in self.raw["w2-tg"])
        for key, goal in (("p256", 10), ("rsa", 40)):
            o = median(r["throughput_rps"] for r in self.raw[f"openssl-{key}"])
            name = "P-256" if key == "p256" else "RSA-2048"
            self.record(f"vs-openssl-{key}", f"cached GET, 2 workers, vs openssl ocsp -multi 2 ({name})",
                        f"{t:,.0f} vs {o:,.0f} req/s = {t / o:.1f} ×", f"≥ {goal} ×", t >= goal * o)
        for p, _ in peers.values():
            self.stop(p)
        self.stop(tg)

    def speed(self, alg):
        out = run(["openssl", "speed", "-seconds", SPEED_SECS, alg], timeout=300)
        for line in out.splitlines():
            m = re.match(r"\s*\d+ bits .*?\s([0-9.]+)s\s+([0-9.]+)s\s+([0-9.]+)\s+([0-9.]+)\s*$", line)
            if m:
                return float(m.group(3))
            m = re.match(r"rsa\s+2048 bits\s+([0-9.]+)s\s+([0-9.]+)s\s+([0-9.]+)\s+([0-9.]+)", line)
            if m:
                return float(m.group(3))
        raise RuntimeError(f"openssl speed {alg}: no sign/s figure")

    def s_sign(self):
        tg = self.serve("tg-sign", 1, hk_mode="sign")
        url = tg.url + "/ocsp"
        speeds = {"ecdsap256": [], "sm2": [], "rsa2048": []}
        for _ in range(RUNS):
            self.tb("nonce-p256", url, self.one_txt, "--connections", CONNS, "--nonce", 1, "--post", 1)
            self.tb("nonce-sm2", url, self.demo_ids, "--connections", CONNS, "--nonce", 1, "--post", 1,
                    "--select", "gd/personal-ca/ee-good/sha1")
            for alg in speeds:
                speeds[alg].append(self.speed(alg))
        self.raw["openssl-speed-sign"] = speeds
        self.speeds = {k: median(v) for k, v in speeds.items()}
        for key, alg, name in (("nonce-p256", "ecdsap256", "P-256"), ("nonce-sm2", "sm2", "SM2")):
            t = median(r["throughput_rps"] for r in self.raw[key])
            s = self.speeds[alg]
            self.record(key, f"nonce requests in sign mode, {name} signer, 1 worker",
                        f"{t:,.0f} answers/s = {t / s * 100:.0f} % of openssl speed ({s:,.0f} sign/s, 1 core)",
                        "≥ 60 %", t >= 0.6 * s)
        self.stop(tg)

    def flip_lists(self, kind):
        """2×FLIPS signed hk lists: suspend / reinstate the ECDSA category."""
        d = os.path.join(self.work, f"flip-{kind}")
        os.makedirs(d, exist_ok=True)
        tmpl = open(os.path.join(self.world, "lists/hk.unsigned.xml"), encoding="utf-8").read()
        out = []
        for i in range(FLIPS):
            pair = []
            for status in (SUSPENDED, GRANTED):
                self.seq += 1
                doc = re.sub(r"<tsl:TSLSequenceNumber>\d+<", f"<tsl:TSLSequenceNumber>{self.seq}<", tmpl, count=1)
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
                doc = re.sub(r"<tsl:ListIssueDateTime>[^<]*<", f"<tsl:ListIssueDateTime>{now}<", doc, count=1)
                a = doc.index(ECC_SERVICE)
                j = doc.index("<tsl:ServiceStatus>", a)
                k = doc.index("</tsl:StatusStartingTime>", j) + len("</tsl:StatusStartingTime>")
                doc = (doc[:j] + f"<tsl:ServiceStatus>{status}</tsl:ServiceStatus>"
                       f"<tsl:StatusStartingTime>{now}</tsl:StatusStartingTime>" + doc[k:])
                u = os.path.join(d, f"{self.seq}.unsigned.xml")
                s = os.path.join(d, f"{self.seq}.xml")
                open(u, "w", encoding="utf-8").write(doc)
                run([self.tg, "tl", "sign", "--key", "operators/hk-operator.key", "--cert",
                     "operators/hk-operator.pem", u, s], cwd=self.world)
                pair.append(s)
            out.append(pair)
        return out

    def s_flip(self):
        ids = ["--certids", self.demo_ids, "--select", "hk/ecc-ca/ee-good/sha1"]
        for kind in ("file", "admin"):
            lists = self.flip_lists(kind)
            if kind == "file":
                dst = os.path.join(self.world, "lists/hk.xml")
                tg = self.serve("tg-flip-file", 2)
            else:
                dst = os.path.join(self.world, "lists/hk-admin.xml")
                shutil.copy(os.path.join(self.world, "lists/hk.xml"), dst)
                # a file: URL is fetched, not watched: only `reload` brings the change
                tg = self.serve("tg-flip-admin", 2, hk_source="file://" + dst)
            url = tg.url + "/ocsp"
            for susp, rein in lists:
                act = ["--rename", susp, dst] + (["--admin", tg.sock] if kind == "admin" else [])
                self.flip(f"flip-{kind}", url, ids, act, "good", "revoked", 6)
                act = ["--rename", rein, dst] + (["--admin", tg.sock] if kind == "admin" else [])
                self.flip(f"unflip-{kind}", url, ids, act, "revoked", "good", None)
            self.stop(tg)
        for kind, goal in (("file", 100), ("admin", 10)):
            lat = sorted(r["latency_ms"] for r in self.raw[f"flip-{kind}"] if r.get("latency_ms") is not None)
            p99 = pct(lat, 99)
            back = median(r["latency_ms"] for r in self.raw[f"unflip-{kind}"])
            how = "a new list file (inotify)" if kind == "file" else "the admin socket's reload"
            self.record(f"flip-{kind}", f"suspension via {how}, {len(lat)} trials",
                        f"p99 {p99:.1f} ms to the first rejection (median {median(lat):.1f}, max {lat[-1]:.1f}; "
                        f"reinstatement median {back:.1f} ms)", f"p99 ≤ {goal} ms", p99 <= goal)

    def flip(self, label, url, ids, act, frm, to, reason):
        js = os.path.join(self.work, f"{label}-{len(self.raw.get(label, []))}.json")
        argv = [self.tbbin, "flip", "--url", url] + ids + act + ["--from", frm, "--to", to, "--json", js,
                                                              "--label", label, "--timeout-ms", 10000]
        if reason is not None:
            argv += ["--to-reason", reason]
        note_cmd(argv)
        p = subprocess.run([str(a) for a in argv], text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        if p.returncode != 0 or not os.path.exists(js):
            raise RuntimeError(f"flip {label}: exit {p.returncode}: {p.stdout[-500:]} {p.stderr[-1500:]}")
        r = json.load(open(js))
        self.raw.setdefault(label, []).append(r)
        return r

    def s_crl(self):
        ca = "hk/rsa-ca"
        crl = os.path.join(self.world, ca, "crl.der")
        small = os.path.join(self.work, "small-crl.der")
        shutil.copy(crl, small)
        ingest, e2e, hwm, base = [], [], [], []
        for i in range(RUNS):
            # each run starts as a server whose CA still publishes its small
            # CRL (the cache holds the last big one: the CA's number goes on)
            shutil.copy(small, crl)
            big = os.path.join(self.work, f"big-{i}.der")
            run([self.mkcrl, "--ca", os.path.join(self.world, ca, "ca.pem"), "--key",
                 os.path.join(self.world, ca, "ca.key"), "--out", big, "--number", 10 + i,
                 "--count", CRL_N, "--seed", 7 + i], timeout=600)
            size = os.path.getsize(big)
            tg = self.serve("tg-crl", 1, log_level="info")
            time.sleep(0.5)  # the start-up fetches of the small CRLs
            base.append(tg.status("VmRSS"))
            with open(f"/proc/{tg.pid}/clear_refs", "w") as f:
                f.write("5")  # VmHWM := VmRSS: the peak below is the ingest's
            os.replace(big, crl)
            t0 = time.monotonic()
            admin(tg.sock, "reload")
            pat = re.compile(r"crl hk/\w+: in force: number 0x%02x, (\d+) revoked.*\(([0-9.]+) s to ingest\)" % (10 + i))
            m = None
            while time.monotonic() - t0 < 600 and m is None:
                m = pat.search(open(tg.logpath, errors="replace").read())
                if m is None:
                    time.sleep(0.01)
            if m is None:
                raise RuntimeError("the big CRL was not taken up; see " + tg.logpath)
            e2e.append(time.monotonic() - t0)
            ingest.append(float(m.group(2)))
            hwm.append(tg.status("VmHWM"))
            self.stop(tg)
        self.crl_size = size
        self.raw["crl-ingest"] = {"entries": CRL_N, "bytes": size, "ingest_s": ingest,
                                  "reload_to_in_force_s": e2e, "vmhwm_kib": hwm, "rss_before_kib": base}
        s, h = median(ingest), median(hwm) / 1024
        limit = 2 * size / 1048576 + 64
        self.record("crl-ingest", f"ingest of a {CRL_N:,}-entry CRL ({size / 1048576:.1f} MiB)",
                    f"{s:.2f} s (reload → in force {median(e2e):.2f} s); peak RSS {h:.0f} MiB "
                    f"(VmHWM during it; limit {limit:.0f} MiB; {median(base) / 1024:.0f} MiB before)",
                    "≤ 10 s, peak RSS ≤ 2 × CRL + 64 MiB", s <= 10 and h <= limit)

    def s_cold(self):
        ms = []
        for _ in range(RUNS):
            ini, port = self.ini("tg-cold", 1)
            url = f"http://127.0.0.1:{port}/ocsp"
            t0 = time.time_ns()
            p = self.start("tg-cold", [self.tg, "serve", "-c", ini], cwd=self.world)
            js = os.path.join(self.work, f"cold-{len(ms)}.json")
            argv = [self.tbbin, "first", "--url", url, "--certids", self.one_txt, "--since-ns", t0,
                    "--timeout-ms", 30000, "--json", js]
            run(argv, timeout=60)
            r = json.load(open(js))
            ms.append(r["ms_since_ns"])
            self.stop(p)
        self.raw["cold-start-ms"] = ms
        m = median(ms)
        self.record("cold-start", f"cold start with {FILL_N:,} cached entries",
                    f"first cached answer {m:.0f} ms after exec (runs: {', '.join(f'{x:.0f}' for x in ms)})",
                    "≤ 1000 ms", m <= 1000)

    # ---- report --------------------------------------------------------

    def machine(self):
        cpu = "unknown"
        try:
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        mem = 0
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
        def ver(argv):
            try:
                p = subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
                return p.stdout.strip().splitlines()[0]
            except Exception:
                return "unknown"
        return {
            "cores": os.cpu_count(), "cpu": cpu, "memory_mib": mem,
            "kernel": platform.release(), "os": ver(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            "trustgate": ver([self.tg, "version"]), "nginx": ver(["nginx", "-v"]),
            "openssl": ver(["openssl", "version"]), "wrk": ver(["wrk", "--version"]),
            "gnuplot": ver(["gnuplot", "--version"]),
        }

    def chart(self, png):
        d = self.work
        f = self.fig
        bars = [("cached GET\\n1 worker", f["get_tg"], f["get_nginx"], "nginx static"),
                ("cached POST\\n1 worker", f["post_tg"], f["get_nginx"], "nginx static")]
        w2 = median(r["throughput_rps"] for r in self.raw["w2-tg"])
        for key, name in (("p256", "P-256"), ("rsa", "RSA")):
            bars.append((f"2 workers vs\\nopenssl {name}", w2,
                         median(r["throughput_rps"] for r in self.raw[f"openssl-{key}"]), "peer"))
        for key, alg, name in (("nonce-p256", "ecdsap256", "P-256"), ("nonce-sm2", "sm2", "SM2")):
            bars.append((f"nonce, {name}\\nvs openssl speed", median(r["throughput_rps"] for r in self.raw[key]),
                         self.speeds[alg], "peer"))
        with open(os.path.join(d, "bars.dat"), "w") as o:
            for name, a, b, _ in bars:
                o.write(f'"{name}" {a:.0f} {b:.0f}\n')
        curves = []
        for label, title in (("get-tg", "trustgate GET (closed)"), ("get-nginx", "nginx GET (closed)"),
                             ("post-tg", "trustgate POST (closed)"), ("open-tg", "trustgate GET, open loop 50 %"),
                             ("open-nginx", "nginx, open loop 50 %")):
            runs = self.raw.get(label) or []
            if not runs:
                continue
            r = runs[len(runs) // 2]
            path = os.path.join(d, f"pct-{label}.dat")
            with open(path, "w") as o:
                for p, us in r.get("percentiles", []):
                    if p >= 100:
                        continue
                    o.write(f"{1 / (1 - p / 100):.6g} {us / 1000:.6g}\n")
            curves.append((path, title))
        plot = ", ".join(f'"{p}" using 1:2 with lines lw 2 title "{t}"' for p, t in curves)
        gp = os.path.join(d, "chart.gp")
        with open(gp, "w") as o:
            o.write(f"""set terminal pngcairo size 1400,560 font ",10" noenhanced
set output "{png}"
set multiplot layout 1,2 title "trustgate bench, {datetime.date.today()} ({'quick' if QUICK else 'full'})"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel "responses/s (log)"
set xtics rotate by -30 font ",8"
set key top right
set title "throughput per scenario (median of {RUNS})"
plot "{d}/bars.dat" using 2:xtic(1) title "trustgate", "" using 3 title "peer / reference"
unset style
set style data lines
set logscale xy
set xlabel "percentile"
set xtics ("50" 2, "90" 10, "99" 100, "99.9" 1000, "99.99" 10000, "99.999" 100000) rotate by 0
set ylabel "latency (ms, log)"
set key top left
set title "latency distribution (median run)"
plot {plot}
unset multiplot
""")
        run(["gnuplot", gp])

    def report(self):
        os.makedirs(self.out, exist_ok=True)
        m = self.machine()
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        png = os.path.join(self.out, "latest.png")
        self.chart(png)
        data = {"date": now, "quick": QUICK, "runs": RUNS, "seconds": SECS, "warmup": WARMUP,
                "machine": m, "scenarios": self.scen, "raw": self.raw, "commands": COMMANDS,
                "fill": {"entries": FILL_N, "seconds": self.fill_s, "summary": self.fill_line}}
        with open(os.path.join(self.out, "latest.json"), "w") as o:
            json.dump(data, o, indent=1)
        L = []
        L.append(f"# trustgate bench — {now}{' (BENCH_QUICK: small and short, figures not meaningful)' if QUICK else ''}\n")
        L.append(f"Machine: {m['cores']} cores, {m['cpu']}, {m['memory_mib']:,} MiB; {m['os']}, Linux {m['kernel']}.  ")
        L.append(f"Versions: {m['trustgate']}; {m['nginx']}; {m['openssl']}; {m['wrk']}; {m['gnuplot']}.  ")
        L.append(f"Each figure is the median of {RUNS} alternated runs of {SECS:g} s (after {WARMUP:g} s of warm-up); "
                 "each comparison is a ratio of medians from this one invocation. Client and servers share the "
                 "machine's cores on loopback.\n")
        L.append("| scenario | measured | goal | |")
        L.append("|---|---|---|---|")
        for s in self.scen:
            L.append(f"| {s['scenario']} | {s['measured']} | {s['goal']} | {s['mark']} |")
        L.append("")
        L.append("![throughput and latency](latest.png)\n")
        L.append("## Runs\n")
        L.append("| run | req/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |")
        L.append("|---|---|---|---|---|---|---|")
        for label, runs in self.raw.items():
            if not isinstance(runs, list):
                continue
            for r in runs:
                if not isinstance(r, dict):
                    continue
                if "latency_us" in r:
                    lu = r["latency_us"]
                    L.append(f"| {label} | {r['throughput_rps']:,.0f} | {lu['p50'] / 1000:.3f} | {lu['p99'] / 1000:.3f} | "
                             f"{lu['p999'] / 1000:.3f} | {lu['max'] / 1000:.3f} | {r.get('errors_total', 0)} |")
                elif "throughput_rps" in r:
                    L.append(f"| {label} (wrk) | {r['throughput_rps'] or 0:,.0f} | | | | | "
                             f"{r['non2xx']} non-2xx{', ' + r['socket_errors'] if r['socket_errors'] else ''} |")
                elif "latency_ms" in r:
                    L.append(f"| {label} | | {r['latency_ms']:.3f} (to the change) | | | | |")
        L.append("")
        L.append(f"Set-up: a `trustgate demo` world; {FILL_N:,} answers signed by the demo's ECDSA CA filled into "
                 f"the cache by `trustgate-bench-fill` in {self.fill_s:.1f} s. Other figures: "
                 + json.dumps({k: v for k, v in self.raw.items() if not isinstance(v, list)}) + "\n")
        L.append("## Commands\n")
        L.append("```")
        L.extend(COMMANDS)
        L.append("```")
        with open(os.path.join(self.out, "latest.md"), "w") as o:
            o.write("\n".join(L) + "\n")
        log(f"report: {self.out}/latest.md, latest.json, latest.png")


def pct(sorted_xs, p):
    if not sorted_xs:
        return float("nan")
    k = max(0, min(len(sorted_xs) - 1, int(round(p / 100 * len(sorted_xs) + 0.5)) - 1))
    return sorted_xs[k]


def admin(path, cmd):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    s.sendall((cmd + "\n").encode())
    out = b""
    while True:
        c = s.recv(4096)
        if not c:
            break
        out += c
    s.close()
    if not out.startswith(b"ok"):
        raise RuntimeError(f"admin {cmd}: {out!r}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--out", default=os.path.join(TOP, "bench", "results"))
    args = ap.parse_args()
    raise_nofile()
    b = Bench(args)
    t0 = time.monotonic()
    ok = False
    try:
        b.make_world()
        b.s_cached()
        b.s_openssl()
        b.s_sign()
        b.s_flip()
        b.s_cold()
        b.s_crl()
        b.report()
        ok = True
    finally:
        b.stop_all()
        if os.environ.get("BENCH_KEEP") == "1" or not ok:
            log(f"work folder kept: {b.work}")
        else:
            shutil.rmtree(b.work, ignore_errors=True)
    log(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
