"""Shared harness for Coffer's integration suites: runs the real `coffer` binary.

A Server owns one `coffer server` process with its own temporary data directory on an ephemeral loopback
port. It reads the port from the "listening on http://127.0.0.1:PORT" log line, collects stdout and stderr
in background threads, stops the process with SIGTERM and checks that it exited 0 without a sanitizer
report. api() sends one HTTP request and returns (status, json, headers); cli() runs a CLI command
against the server and returns (rc, stdout, stderr).

ServerTestCase starts one server per test class (fast under sanitizers) and checks after every test that the
server is still running and has printed no AddressSanitizer/UBSan report.

The binary comes from $COFFER_BIN (default: <repo>/build/coffer). Python standard library only.

The clock: every Server gets COFFER_TEST_CLOCK_FILE, a file of its own holding an offset ("0" at first). On a
test build (meson -Dtest_clock=true, see test_build()) server.advance_clock(seconds) replaces that file, which the
server reads at every reading of its clock, so an expiry test moves time instead of sleeping; on a release build,
which never reads the file, advance_clock skips the rest of the test.

Backends: by default each server keeps its store in <data dir>/coffer.db (SQLite). With $ITEST_PG_DIR naming a
cluster started by scripts/pg.sh, each data directory gets a database of its own in that PostgreSQL cluster
instead (COFFER_DB is set for the server and for `coffer operator` commands on that data directory), so every
suite runs unchanged on PostgreSQL. Tests that inspect the SQLite file itself use @sqlite_only, or sql() which
speaks to either backend.
"""

import atexit
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COFFER_BIN = os.path.abspath(os.environ.get("COFFER_BIN") or os.path.join(REPO, "build", "coffer"))

# Bootstrap admin token used by most suites (>= 16 characters).
ADMIN_TOKEN = "itest-admin-token-6f1c2d9e8b7a"

# Markers of a sanitizer report in a process's stderr.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "runtime error:",
    "ThreadSanitizer",
)

START_TIMEOUT = float(os.environ.get("ITEST_START_TIMEOUT", "30"))
STOP_TIMEOUT = float(os.environ.get("ITEST_STOP_TIMEOUT", "30"))
CLI_TIMEOUT = float(os.environ.get("ITEST_CLI_TIMEOUT", "60"))

LISTEN_RE = re.compile(r"listening on (https?)://([^\s:/]+|\[[^\]]+\]):(\d+)")

_live_servers = set()

PG_DIR = os.environ.get("ITEST_PG_DIR") or None
BACKEND = "postgres" if PG_DIR else "sqlite"
PG_SCRIPT = os.path.join(REPO, "scripts", "pg.sh")
_pg_databases = {}  # data dir -> URI of its database


def pg_uri(database):
    """The URI of a database of the test cluster."""
    return "postgresql:///%s?host=%s&port=5433&user=coffer" % (database, PG_DIR)


def new_pg_database():
    """Creates an empty database in the test cluster; returns its URI."""
    name = "itest_" + uuid.uuid4().hex[:16]
    subprocess.run([PG_SCRIPT, "createdb", PG_DIR, name], check=True, capture_output=True, timeout=60)
    return pg_uri(name)


def drop_pg_database(data_dir):
    """Drops the database of data_dir, if it has one (the cluster would otherwise grow by one per server)."""
    uri = _pg_databases.pop(os.path.realpath(data_dir), None)
    if uri:
        name = uri.split("///", 1)[1].split("?", 1)[0]
        subprocess.run([PG_SCRIPT, "dropdb", PG_DIR, name], capture_output=True, timeout=60)


def db_env(data_dir):
    """{"COFFER_DB": URI} for the store of data_dir on PostgreSQL (created on first use), {} on SQLite."""
    if not PG_DIR:
        return {}
    key = os.path.realpath(data_dir)
    if key not in _pg_databases:
        _pg_databases[key] = new_pg_database()
    return {"COFFER_DB": _pg_databases[key]}


def sql(data_dir, *statements):
    """Runs statements, in one transaction, directly on the store of data_dir (its SQLite file, or its PostgreSQL
    database), bypassing Coffer, as an attacker with access to the database would; returns the rows of the last
    statement (values as text on PostgreSQL)."""
    if PG_DIR:
        uri = db_env(data_dir)["COFFER_DB"]
        if len(statements) > 1:
            psql(uri, "BEGIN; " + "; ".join(statements[:-1]) + "; COMMIT")
        return psql(uri, statements[-1])
    import sqlite3
    db = sqlite3.connect(os.path.join(data_dir, "coffer.db"), timeout=10)
    try:
        rows = []
        for statement in statements:
            rows = db.execute(statement).fetchall()
        db.commit()
    finally:
        db.close()
    move_change_generation(os.path.join(data_dir, "coffer.db-gen"))
    return rows


def move_change_generation(path):
    """Moves the change generation of a SQLite store (docs/architecture.md), as Coffer's own writers do after a
    commit, so that a running server's next request reads the database again instead of taking over counters
    read before the change (a writer that does not is seen within a second). Not atomic against the server's
    own bumps: a test edits the database while the server is idle."""
    import mmap
    import struct
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        with mmap.mmap(fd, 8) as m:
            m[0:8] = struct.pack("=Q", (struct.unpack("=Q", m[0:8])[0] + 1) % (1 << 64))
    finally:
        os.close(fd)


def store_dirs(data_dir, checkpoint=True):
    """The directories holding data_dir's store on disk: the data dir itself on SQLite; on PostgreSQL its
    database's directory and the cluster's WAL (after a CHECKPOINT, which writes the tables out)."""
    if not PG_DIR:
        return [data_dir]
    if checkpoint:
        sql(data_dir, "CHECKPOINT")
    oid = sql(data_dir, "SELECT oid FROM pg_database WHERE datname = current_database()")[0][0]
    return [os.path.join(PG_DIR, "data", "base", oid), os.path.join(PG_DIR, "data", "pg_wal")]


def store_files(data_dir, checkpoint=True):
    """(relative name, contents) of every file of data_dir's store (store_dirs) that can still be read: PostgreSQL
    removes some of its files (pg_internal.init, old WAL segments) while a walk runs."""
    for directory in store_dirs(data_dir, checkpoint):
        for root, _, files in os.walk(directory):
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    continue
                yield os.path.relpath(path, directory), data


def sqlite_only(reason):
    """Skips a test (or class) on PostgreSQL, saying why: for checks of the SQLite file itself."""
    return unittest.skipIf(PG_DIR is not None, "SQLite only: " + reason)


def _psql_args(uri, query):
    bindir = sorted(d for d in os.listdir("/usr/lib/postgresql"))[-1]
    return [os.path.join("/usr/lib/postgresql", bindir, "bin", "psql"), "-X", "-q", "-A", "-t",
            "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-d", uri, "-c", query]


def psql(uri, query):
    """Runs query on PostgreSQL with psql; returns the rows as lists of strings."""
    out = subprocess.run(_psql_args(uri, query), check=True, capture_output=True, timeout=60).stdout.decode()
    return [line.split("\x1f") for line in out.splitlines() if line]


def psql_start(uri, query):
    """Starts query on PostgreSQL with psql in a session of its own; returns the process (wait for it)."""
    return subprocess.Popen(_psql_args(uri, query), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


_test_build = None
_clock_dir = None
NOT_A_TEST_BUILD = "a release build: its clock cannot be moved (meson -Dtest_clock=true)"


def test_build():
    """True when COFFER_BIN is a test build (meson -Dtest_clock=true), whose clock a test may move."""
    global _test_build
    if _test_build is None:
        rc, out, _ = run(["version"])
        _test_build = rc == 0 and "test build" in out
    return _test_build


def clock_file():
    """A new file for one server's clock offset (in a directory removed at exit), holding "0"."""
    global _clock_dir
    if _clock_dir is None:
        _clock_dir = tempfile.mkdtemp(prefix="coffer-itest-clock-")
        atexit.register(shutil.rmtree, _clock_dir, True)
    path = os.path.join(_clock_dir, uuid.uuid4().hex)
    write_clock_file(path, 0)
    return path


def write_clock_file(path, seconds):
    """Sets the offset in path to seconds: written beside it and renamed over it, so that a server reading it
    never sees it half written."""
    with open(path + ".new", "w") as f:
        f.write("%+ds\n" % seconds if seconds else "0\n")
    os.replace(path + ".new", path)


def _kill_leftovers():
    for server in list(_live_servers):
        try:
            server.proc.kill()
        except Exception:
            pass


atexit.register(_kill_leftovers)


def sanitizer_report(text):
    """The first sanitizer report in text (a few lines around it), or None."""
    for marker in SANITIZER_MARKERS:
        i = text.find(marker)
        if i >= 0:
            start = text.rfind("\n", 0, max(0, i - 200)) + 1
            return text[start:i + 3000]
    return None


_cache_home = None


def cache_home():
    """XDG_CACHE_HOME of the coffer processes of this test run (a directory removed at exit): `coffer scan`
    keeps its compiled rules there, never in the user's own ~/.cache."""
    global _cache_home
    if _cache_home is None:
        _cache_home = tempfile.mkdtemp(prefix="coffer-itest-cache-")
        atexit.register(shutil.rmtree, _cache_home, True)
    return _cache_home


def base_env(extra=None, drop=()):
    """The environment for a coffer process: ours without COFFER_*/INFISICAL_* settings, plus extra; its
    XDG_CACHE_HOME is the test run's own (cache_home())."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COFFER_") and not k.startswith("INFISICAL_")}
    env["XDG_CACHE_HOME"] = cache_home()
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    for k in drop:
        env.pop(k, None)
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def run(args, env=None, input=None, timeout=CLI_TIMEOUT, cwd=None):
    """Runs the coffer binary with args; returns (rc, stdout, stderr) as text. Fails on a sanitizer report."""
    if isinstance(input, str):
        input = input.encode()
    if env is None:
        env = base_env()
        args = list(args)
        # `coffer operator ... --data-dir D` works on D's store, wherever the backend keeps it
        if PG_DIR and "--data-dir" in args and args.index("--data-dir") + 1 < len(args):
            env.update(db_env(args[args.index("--data-dir") + 1]))
    proc = subprocess.run([COFFER_BIN] + list(args), input=input, capture_output=True,
                          env=env, timeout=timeout, cwd=cwd)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    report = sanitizer_report(err)
    if report:
        raise AssertionError("sanitizer report from coffer %s:\n%s" % (" ".join(args), report))
    return proc.returncode, out, err


class Response(tuple):
    """(status, json, headers), plus .body (raw bytes)."""

    def __new__(cls, status, data, headers, body):
        self = super().__new__(cls, (status, data, headers))
        self.body = body
        return self

    @property
    def status(self):
        return self[0]

    @property
    def json(self):
        return self[1]

    @property
    def headers(self):
        return self[2]


class ServerStartError(Exception):
    pass


class Server:
    """One `coffer server` process. Use start(), then api()/cli(), then stop() (returns the exit status)."""

    def __init__(self, data_dir=None, args=(), env=None, bootstrap_token=ADMIN_TOKEN, addr="127.0.0.1:0",
                 use_addr_flag=True, use_data_dir_flag=True):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="coffer-itest-")
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.token = bootstrap_token
        self.addr = addr
        self.use_addr_flag = use_addr_flag
        self.use_data_dir_flag = use_data_dir_flag
        self.proc = None
        self.port = None
        self.scheme = "http"
        self.host = "127.0.0.1"
        self.ssl_context = None
        self._stderr = []
        self._stdout = []
        self._lock = threading.Lock()
        self._threads = []
        self.clock_file = None
        self.clock_offset = 0

    # ----- lifecycle -----

    def command(self):
        cmd = [COFFER_BIN, "server"]
        if self.use_addr_flag and self.addr:
            cmd += ["--addr", self.addr]
        if self.use_data_dir_flag and self.data_dir:
            cmd += ["--data-dir", self.data_dir]
        return cmd + self.args

    def environment(self):
        extra = dict(self.extra_env)
        if PG_DIR and "COFFER_DB" not in extra and "--db" not in self.args and self.data_dir:
            extra.update(db_env(self.data_dir))
        if self.token is not None and "COFFER_BOOTSTRAP_TOKEN" not in extra:
            extra["COFFER_BOOTSTRAP_TOKEN"] = self.token
        if "COFFER_TEST_CLOCK_FILE" not in extra:
            if self.clock_file is None:
                self.clock_file = clock_file()
            extra["COFFER_TEST_CLOCK_FILE"] = self.clock_file
        return base_env(extra)

    def advance_clock(self, seconds):
        """Moves the running server's clock seconds forward (from the next reading on, in every thread), on a test
        build; on a release build, whose clock cannot move, raises unittest.SkipTest: the checks before the call
        have run, those after it need the test build."""
        if not test_build():
            raise unittest.SkipTest(NOT_A_TEST_BUILD)
        if self.clock_file is None:
            raise AssertionError("advance_clock: the server was started with a COFFER_TEST_CLOCK_FILE of its own")
        self.clock_offset += seconds
        write_clock_file(self.clock_file, self.clock_offset)

    def _reader(self, stream, sink):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._lock:
                sink.append(line)
        stream.close()

    def _answers(self):
        port = int(self.addr.rsplit(":", 1)[1])
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/api/status")
            ok = c.getresponse().status in (200, 503)
            c.close()
            return ok
        except OSError:
            return False

    def start(self, timeout=START_TIMEOUT, wait_log=True):
        """Starts the process and waits for its listening line (or, with wait_log=False and a fixed port in
        addr, for /api/status to answer). Raises ServerStartError if it exits first."""
        self._stderr = []
        self._stdout = []
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=self.environment())
        _live_servers.add(self)
        self._threads = [
            threading.Thread(target=self._reader, args=(self.proc.stdout, self._stdout), daemon=True),
            threading.Thread(target=self._reader, args=(self.proc.stderr, self._stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = LISTEN_RE.search(self.stderr)
            if not m and not wait_log and self._answers():
                self.port = int(self.addr.rsplit(":", 1)[1])
                return self
            if m:
                self.scheme, host, self.port = m.group(1), m.group(2), int(m.group(3))
                if host not in ("0.0.0.0", "[::]", "::"):
                    self.host = host.strip("[]")
                return self
            if self.proc.poll() is not None:
                self._join_readers()
                _live_servers.discard(self)
                raise ServerStartError("coffer server exited with %s before listening:\nstdout: %s\nstderr: %s"
                                       % (self.proc.returncode, self.stdout, self.stderr))
            time.sleep(0.01)
        self.proc.kill()
        self.proc.wait()
        _live_servers.discard(self)
        raise ServerStartError("coffer server did not report its port within %ss:\n%s" % (timeout, self.stderr))

    def _join_readers(self):
        for t in self._threads:
            t.join(timeout=10)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and waits; returns the exit status (negative for a signal). Kills it after timeout."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._join_readers()
                _live_servers.discard(self)
                raise AssertionError("coffer server did not exit within %ss of signal %d" % (timeout, sig))
        self._join_readers()
        _live_servers.discard(self)
        return self.proc.returncode

    def kill9(self):
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._join_readers()
        _live_servers.discard(self)

    def restart(self, **kw):
        if self.alive():
            self.stop()
        return self.start(**kw)

    def cleanup(self):
        if self.alive():
            self.kill9()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            drop_pg_database(self.data_dir)

    # ----- output -----

    @property
    def stderr(self):
        with self._lock:
            return "".join(self._stderr)

    @property
    def stdout(self):
        with self._lock:
            return "".join(self._stdout)

    def stderr_len(self):
        with self._lock:
            return len(self._stderr)

    def stderr_since(self, n):
        with self._lock:
            return "".join(self._stderr[n:])

    def sanitizer_report(self):
        return sanitizer_report(self.stderr)

    def wait_for_stdout(self, pattern, timeout=10):
        """Waits until stdout matches the regex; returns the match or None. stdout and stderr are read by two
        threads, so a line the server wrote before its listening line may still be on its way here."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.stdout)
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.02)

    def wait_for_stderr(self, pattern, timeout=10, since=0):
        """Waits until stderr (from line index since) matches the regex; returns the match or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.stderr_since(since))
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.02)

    def request_log_lines(self):
        return [l for l in self.stderr.splitlines() if "method=" in l and "status=" in l]

    # ----- HTTP -----

    @property
    def url(self):
        return "%s://%s:%d" % (self.scheme, self.host, self.port)

    def connection(self, timeout=30):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def api(self, method, path, query=None, body=None, token=..., headers=None, conn=None, timeout=30):
        """Sends one request. query: dict (urlencoded) or a raw string; body: dict/list (JSON), str or bytes.
        token=... uses the server's admin token, None sends no Authorization header. Returns Response."""
        if query:
            if isinstance(query, str):
                path = path + "?" + query
            else:
                path = path + "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        hdrs = {}
        if token is ...:
            token = self.token
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                data = bytes(body)
            elif isinstance(body, str):
                data = body.encode("utf-8")
            else:
                data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        own = conn is None
        c = conn or self.connection(timeout=timeout)
        try:
            c.request(method, path, body=data, headers=hdrs)
            resp = c.getresponse()
            raw = resp.read()
            status, rheaders = resp.status, resp.headers
        finally:
            if own:
                c.close()
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                parsed = None
        return Response(status, parsed, rheaders, raw)

    # ----- CLI -----

    def cli_env(self, token=..., extra=None):
        if token is ...:
            token = self.token
        env = {"COFFER_API_URL": self.url}
        if token is not None:
            env["COFFER_TOKEN"] = token
        if extra:
            env.update(extra)
        return base_env(env)

    def cli(self, *args, input=None, token=..., env=None, timeout=CLI_TIMEOUT):
        """Runs `coffer ARGS` against this server; returns (rc, stdout, stderr)."""
        return run(args, env=self.cli_env(token, env), input=input, timeout=timeout)


# ----- helpers used by several suites -----

def assert_start_refused(test, cases):
    """For each (args, words) of cases, `coffer server ARGS` must refuse to start, saying words."""
    for args, words in cases:
        s = Server(args=args)
        try:
            with test.assertRaises(ServerStartError, msg=" ".join(args)) as caught:
                s.start()
            test.assertIn(words, str(caught.exception))
        finally:
            s.stop()
            s.cleanup()


def seeded_random(test):
    """The random.Random of a randomized test (test: the TestCase): seeded with ITEST_SEED when it is set,
    else with a fresh seed, which is printed (stderr, shown with a failing suite's output) so that the run
    can be replayed: ITEST_SEED=N python3 tests/integration/run.py -v SUITE."""
    text = os.environ.get("ITEST_SEED", "")
    seed = int(text) if text else random.SystemRandom().randrange(1, 2 ** 31)
    print("%s: ITEST_SEED=%d" % (test.id(), seed), file=sys.stderr, flush=True)
    return random.Random(seed)


def unique(prefix="p"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory, cn="localhost"):
    """A self-signed certificate for 127.0.0.1/localhost made with the openssl CLI; returns (cert, key)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class ServerTestCase(unittest.TestCase):
    """One server per test class. Subclasses may set server_args / server_env, and server_bootstrap_token (None:
    the server makes and prints its own admin token)."""

    server_args = ()
    server_env = None
    server_bootstrap_token = ADMIN_TOKEN
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(args=cls.server_args, env=cls.server_env, bootstrap_token=cls.server_bootstrap_token)
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        server = cls.server
        if server is None:
            return
        try:
            was_alive = server.alive()
            rc = server.stop()
            report = server.sanitizer_report()
            if report:
                raise AssertionError("sanitizer report in server stderr:\n" + report)
            if not was_alive:
                raise AssertionError("server died during the suite (exit %s):\n%s" % (rc, server.stderr[-4000:]))
            if rc != 0:
                raise AssertionError("server exited %s on SIGTERM:\n%s" % (rc, server.stderr[-4000:]))
        finally:
            server.cleanup()

    def setUp(self):
        self._stderr_mark = self.server.stderr_len() if self.server else 0

    def tearDown(self):
        if not self.server:
            return
        report = sanitizer_report(self.server.stderr_since(self._stderr_mark))
        if report:
            self.fail("sanitizer report in server stderr during this test:\n" + report)
        if not self.server.alive():
            self.fail("server is no longer running (exit %s):\n%s"
                      % (self.server.proc.returncode, self.server.stderr[-4000:]))

    # ----- convenience -----

    def advance_clock(self, seconds):
        """Server.advance_clock on the class's server, for this test only: the clock is put back when it ends, so
        that the next test starts at the real time (a test build; on a release build the test is skipped from
        here)."""
        before = self.server.clock_offset
        self.server.advance_clock(seconds)
        self.addCleanup(self.server.advance_clock, before - self.server.clock_offset)

    def api(self, *a, **kw):
        return self.server.api(*a, **kw)

    def cli(self, *a, **kw):
        return self.server.cli(*a, **kw)

    def ok(self, method, path, query=None, body=None, **kw):
        """A request that must succeed; returns its JSON."""
        r = self.api(method, path, query=query, body=body, **kw)
        if r.status != 200:
            self.fail("%s %s -> %d %s" % (method, path, r.status, r.body[:1000]))
        self.assertIsInstance(r.json, dict, "%s %s: body is not a JSON object" % (method, path))
        return r.json

    def assertError(self, r, status, error=None, *contains, msg=None):
        """r is an error response with this status and error name whose message contains every string of
        contains (case-insensitive); its reqId matches X-Request-Id; 422 has details."""
        where = msg or ""
        self.assertEqual(r.status, status, "%s expected %d, got %d: %r" % (where, status, r.status, r.body[:600]))
        self.assertIsInstance(r.json, dict, "%s error body is not a JSON object: %r" % (where, r.body[:300]))
        body = r.json
        self.assertEqual(body.get("statusCode"), status, "%s statusCode field: %r" % (where, body))
        if error:
            self.assertEqual(body.get("error"), error, "%s error field: %r" % (where, body))
        self.assertIsInstance(body.get("message"), str, "%s message must be a string: %r" % (where, body))
        self.assertTrue(body["message"], "%s empty message" % where)
        low = body["message"].lower()
        for s in contains:
            self.assertIn(s.lower(), low, "%s message %r should name %r" % (where, body["message"], s))
        rid = r.headers.get("X-Request-Id")
        self.assertTrue(rid, "%s no X-Request-Id header" % where)
        self.assertEqual(body.get("reqId"), rid, "%s reqId differs from X-Request-Id" % where)
        if status == 422:
            self.assertIsInstance(body.get("details"), list, "%s 422 without details: %r" % (where, body))
            self.assertTrue(body["details"], "%s 422 with empty details" % where)
        return body

    # projects and secrets

    def create_project(self, name=None, **extra):
        body = {"projectName": name or unique("proj")}
        body.update(extra)
        data = self.ok("POST", "/api/v2/workspace", body=body)
        self.assertIn("project", data)
        return data["project"]

    def delete_project(self, pid):
        return self.api("DELETE", "/api/v1/workspace/" + pid)

    def create_folder(self, pid, env, name, path="/"):
        return self.ok("POST", "/api/v1/folders",
                       body={"workspaceId": pid, "environment": env, "name": name, "path": path})["folder"]

    def set_secret(self, pid, key, value, env="dev", path="/", **extra):
        body = {"workspaceId": pid, "environment": env, "secretPath": path, "secretValue": value}
        body.update(extra)
        return self.ok("POST", "/api/v3/secrets/raw/" + urllib.parse.quote(key, safe=""), body=body)["secret"]

    def update_secret(self, pid, key, env="dev", path="/", **fields):
        body = {"workspaceId": pid, "environment": env, "secretPath": path}
        body.update(fields)
        return self.ok("PATCH", "/api/v3/secrets/raw/" + urllib.parse.quote(key, safe=""), body=body)["secret"]

    def get_secret(self, pid, key, env="dev", path="/", **query):
        q = {"workspaceId": pid, "environment": env, "secretPath": path}
        q.update(query)
        return self.api("GET", "/api/v3/secrets/raw/" + urllib.parse.quote(key, safe=""), query=q)

    def list_secrets(self, pid, env="dev", path="/", **query):
        q = {"workspaceId": pid, "environment": env, "secretPath": path}
        q.update(query)
        return self.api("GET", "/api/v3/secrets/raw", query=q)

    def secret_values(self, pid, env="dev", path="/", recursive=True):
        """{(secretPath, key): value} of an environment (recursive by default). Fails on an error."""
        r = self.list_secrets(pid, env, path, recursive="true" if recursive else "false")
        if r.status != 200:
            self.fail("list %s %s -> %d %r" % (env, path, r.status, r.body[:500]))
        return {(s.get("secretPath", path), s["secretKey"]): s["secretValue"] for s in r.json["secrets"]}

    def snapshot(self, pid):
        """Everything readable in a project: envs, folders, secrets (with versions), imports, tags."""
        proj = self.ok("GET", "/api/v1/workspace/" + pid)["workspace"]
        envs = sorted((e["slug"], e["name"], e["position"]) for e in proj["environments"])
        out = {"envs": envs, "name": proj["name"], "slug": proj["slug"]}
        for slug, _, _ in envs:
            r = self.list_secrets(pid, slug, "/", recursive="true")
            self.assertEqual(r.status, 200, r.body[:300])
            out["secrets:" + slug] = sorted(
                (s.get("secretPath"), s["secretKey"], s["secretValue"], s["version"], s.get("secretComment"))
                for s in r.json["secrets"])
            f = self.ok("GET", "/api/v1/folders",
                        query={"workspaceId": pid, "environment": slug, "path": "/", "recursive": "true"})
            out["folders:" + slug] = sorted(x.get("path") or x["name"] for x in f["folders"])
        return out
