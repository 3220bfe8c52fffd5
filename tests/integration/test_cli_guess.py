"""The CLI a person can guess: every usage line lists every option the parser takes (`coffer help CMD [SUB]`,
`--help`, `-h`, all alike, exit 0); unknown commands, subcommands and options name the nearest one (exit 2); an
error after a defaulted --env says 'dev' was used; transport failures say their cause in words (plain HTTP
behind https://, nothing listening, DNS, an untrusted certificate); `coffer audit list` fits 80 and 120
columns (ellipsis, --wide for all); bash/zsh completion and man pages made from the same tables, and `make
install PREFIX=...` installing them."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import Server, ServerTestCase, unique

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args, env=None, **kw):
    return harness.run(list(args), env=harness.base_env(env), **kw)


def completion_table():
    """{command path: words that may follow it} from `coffer completion bash`'s _coffer_words."""
    rc, script, err = run("completion", "bash")
    assert rc == 0, err
    body = script.split("_coffer_words()", 1)[1].split("\n}\n", 1)[0]
    return {path: words.split() for path, words in re.findall(r'^\s*"([^"]*)"\) echo \'([^\']*)\' ;;$',
                                                              body, re.M)}


# commands whose --help and -h are compared with `coffer help`: one of each kind of parser and dispatch
SAMPLE = {"secrets list", "run", "login", "server", "operator migrate", "audit list", "completion"}


def synopsis(text):
    return text.split("\n\n", 1)[0]


class Help(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.table = completion_table()

    def test_tree_covers_every_command(self):
        for path in ("", "secrets", "secrets list", "identities universal-auth attach", "server", "operator migrate",
                     "audit list", "run", "export", "login", "completion", "man", "help"):
            self.assertIn(path, self.table)
        self.assertIn("--env", self.table["secrets list"])

    def test_every_usage_line_lists_every_option(self):
        leaves = [p for p, words in self.table.items() if p and any(w.startswith("--") and w != "--help"
                                                                     for w in words)]
        self.assertGreater(len(leaves), 40)
        for path in leaves:
            words = path.split()
            flags = [w for w in self.table[path] if w.startswith("--") and w != "--help"]
            rc, by_help, err = run("help", *words)
            self.assertEqual((rc, err), (0, ""), path)
            # the three ways to ask are one code path: compare them on a sample (each run costs time)
            for form in ("--help", "-h") if path in SAMPLE or len(words) > 2 else ():
                rc, out, err = run(*words, form)
                self.assertEqual((rc, err), (0, ""), "%s %s" % (path, form))
                self.assertEqual(out, by_help, "coffer help %s differs from %s %s" % (path, path, form))
            head = synopsis(by_help)
            self.assertTrue(head.startswith("usage: coffer "), head)
            for flag in flags:
                self.assertRegex(head, re.escape(flag) + r"(?![\w-])",
                                 "the usage line of '%s' does not list %s:\n%s" % (path, flag, head))
            for line in head.splitlines():
                self.assertLessEqual(len(line), 100, "%s: %r" % (path, line))

    def test_secrets_list_usage_names_its_scope(self):
        rc, out, err = run("secrets", "list", "--help")
        self.assertEqual(rc, 0)
        for flag in ("--env SLUG", "--path PATH", "--projectId ID", "--show-values"):
            self.assertIn(flag, synopsis(out))

    def test_help_of_groups_and_program(self):
        for args, words in ((("help",), "commands:"), (("help", "secrets"), "subcommands:"),
                            (("help", "identities", "universal-auth"), "attach"),
                            (("secrets", "help", "list"), "usage: coffer secrets list"),
                            (("--help",), "coffer help <command>")):
            rc, out, err = run(*args)
            self.assertEqual((rc, err), (0, ""), args)
            self.assertIn(words, out, args)

    def test_unknown_names_suggest_the_nearest(self):
        cases = [
            (("secrets", "list", "--environment", "prod"), "unknown option '--environment' (did you mean --env?)"),
            (("secrets", "list", "--show-value"), "(did you mean --show-values?)"),
            (("secrets", "set", "A=1", "--projectid", "p"), "(did you mean --projectId?)"),
            (("run", "--recursiv", "--", "true"), "(did you mean --recursive?)"),
            (("secrts", "list"), "unknown command 'secrts' (did you mean 'secrets'?)"),
            (("secrets", "lst"), "unknown subcommand 'lst' for 'secrets' (did you mean 'list'?)"),
            (("help", "secrets", "lst"), "(did you mean 'list'?)"),
            (("help", "identitie"), "(did you mean 'identities'?)"),
            (("identities", "universal-auth", "atach", "x"), "(did you mean 'attach'?)"),
            (("server", "--adr", "127.0.0.1:0"), "did you mean --addr?"),
        ]
        for args, words in cases:
            rc, out, err = run(*args)
            self.assertEqual(rc, 2, args)
            self.assertIn(words, err, args)
            self.assertIn("usage: coffer", err, args)
            self.assertEqual(out, "", args)
        # nothing close: no guess
        for args in (("secrets", "list", "--zzzzqqq"), ("frobnicate",), ("secrets", "xyzzy")):
            rc, out, err = run(*args)
            self.assertEqual(rc, 2, args)
            self.assertIn("unknown", err)
            self.assertNotIn("did you mean", err, args)

    def test_usage_error_prints_the_full_synopsis(self):
        rc, out, err = run("secrets", "list", "--bogus")
        self.assertEqual(rc, 2)
        for flag in ("--env", "--path", "--projectId"):
            self.assertIn(flag, err)


class Completion(unittest.TestCase):
    CASES = [
        (["coffer", "sec"], ["secrets"]),
        (["coffer", "secrets", "l"], ["list"]),
        (["coffer", "secrets", "list", "--en"], ["--env"]),
        (["coffer", "secrets", "list", "--env", "prod", "--pa"], ["--path"]),
        (["coffer", "secrets", "list", "--env", ""], []),
        (["coffer", "--token=x", "identities", "universal-auth", "at"], ["attach"]),
        (["coffer", "help", "secr"], ["secrets"]),
        (["coffer", "inventory", "--output", ""], ["table", "json", "csv"]),
        (["coffer", "server", "--tls-c"], ["--tls-cert"]),
        (["coffer", "operator", "migrate", "--fr"], ["--from"]),
        (["coffer", "audit", "list", "--wi"], ["--wide"]),
        (["coffer", "completion", "--h"], ["--help"]),
    ]

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="coffer-itest-comp-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def script(self, shell):
        rc, out, err = run("completion", shell)
        self.assertEqual((rc, err), (0, ""))
        path = os.path.join(self.tmp, "coffer." + shell)
        with open(path, "w") as f:
            f.write(out)
        return path

    def test_bash_loads_and_completes(self):
        path = self.script("bash")
        lines = ['source %s || exit 9' % path, 'complete -p coffer || exit 8']
        for words, _ in self.CASES:
            quoted = " ".join("'%s'" % w for w in words)
            lines.append('COMP_WORDS=(%s); COMP_CWORD=%d; COMPREPLY=(); _coffer; echo "[${COMPREPLY[*]}]"'
                         % (quoted, len(words) - 1))
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(lines)], capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")
        out = proc.stdout.splitlines()
        self.assertEqual(out[0], "complete -o default -F _coffer coffer")
        for (words, want), got in zip(self.CASES, out[1:]):
            self.assertEqual(sorted(got.strip("[]").split()), sorted(want), words)

    def test_bash_completes_every_option_of_every_command(self):
        table = completion_table()
        path = self.script("bash")
        lines = ['source %s || exit 9' % path]
        for node in ("secrets list", "run", "export", "login", "audit list"):
            words = ["coffer"] + node.split() + ["--"]
            # "--" alone would end the options: ask for "--" followed by nothing typed yet, as "--" + ""
            words[-1] = "-"
            quoted = " ".join("'%s'" % w for w in words)
            lines.append('COMP_WORDS=(%s); COMP_CWORD=%d; _coffer; echo "${COMPREPLY[*]}"'
                         % (quoted, len(words) - 1))
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(lines)], capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for node, got in zip(("secrets list", "run", "export", "login", "audit list"), proc.stdout.splitlines()):
            want = [w for w in table[node] if w.startswith("--")]
            self.assertEqual(sorted(got.split()), sorted(want), node)

    def test_zsh_script(self):
        path = self.script("zsh")
        with open(path) as f:
            text = f.read()
        self.assertTrue(text.startswith("#compdef coffer\n"))
        self.assertIn('"secrets list") echo', text)
        zsh = shutil.which("zsh")
        if not zsh:
            self.skipTest("zsh is not installed: only the script's text was checked, not its syntax")
        proc = subprocess.run([zsh, "-n", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        # the completion function run outside a real completion widget: compadd and _files record what they
        # are given (zsh's compadd filters by the typed prefix itself)
        lines = ["compdef() { :; }",
                 'compadd() { [[ $1 == -- ]] && shift; print -r -- "compadd: $*"; }',
                 '_files() { print -r -- "_files"; }',
                 "source %s" % path]
        cases = [(["coffer", "secrets", "list", "--en"], "compadd: ", ["--env", "--path", "--projectId"]),
                 (["coffer", "inventory", "--output", ""], "compadd: table json csv", []),
                 (["coffer", "identities", "jwt-auth", "attach", "x", "--public-key-file", ""], "_files", []),
                 (["coffer", "sec"], "compadd: access agent approvals audit completion", ["secrets"])]
        for words, _, _ in cases:
            lines.append("words=(%s); CURRENT=%d; _coffer" % (" ".join("'%s'" % w for w in words), len(words)))
        proc = subprocess.run([zsh, "-f", "-c", "\n".join(lines)], capture_output=True, text=True, timeout=60)
        self.assertEqual((proc.returncode, proc.stderr), (0, ""))
        for (words, start, members), got in zip(cases, proc.stdout.splitlines()):
            self.assertTrue(got.startswith(start), (words, got))
            for member in members:
                self.assertIn(member, got.split(), words)

    def test_unknown_shell_is_a_usage_error(self):
        rc, out, err = run("completion", "fish")
        self.assertEqual(rc, 2)
        self.assertIn("bash or zsh", err)
        self.assertEqual(out, "")


class ManPages(unittest.TestCase):
    def test_pages_for_every_command(self):
        tmp = tempfile.mkdtemp(prefix="coffer-itest-man-")
        self.addCleanup(shutil.rmtree, tmp, True)
        rc, out, err = run("man", "--out", tmp)
        self.assertEqual((rc, err), (0, ""))
        commands = [w for w in completion_table()[""] if not w.startswith("-")]
        self.assertEqual(sorted(os.listdir(tmp)), sorted(["coffer.1"] + ["coffer-%s.1" % c for c in commands]))
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name)) as f:
                text = f.read()
            self.assertRegex(text, r"(?m)^\.TH COFFER")
            self.assertRegex(text, r"(?m)^\.SH NAME\n")
        with open(os.path.join(tmp, "coffer-secrets.1")) as f:
            text = f.read()
        self.assertIn('.SS "coffer secrets list"', text)
        self.assertIn("[\\-\\-env SLUG]", text)
        if shutil.which("groff"):
            for name in os.listdir(tmp):
                proc = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(tmp, name)], capture_output=True,
                                      text=True, timeout=60)
                self.assertEqual((proc.returncode, proc.stderr), (0, ""), name)
        if not shutil.which("man"):
            self.skipTest("man is not installed: the roff text was checked, not its rendering")
        proc = subprocess.run(["man", "-l", os.path.join(tmp, "coffer-secrets.1")], capture_output=True,
                              env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="100"), timeout=60)
        rendered = proc.stdout.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("coffer secrets list", rendered)
        self.assertIn("--env SLUG", re.sub(r".\x08", "", rendered))

    def test_out_is_required(self):
        rc, out, err = run("man")
        self.assertEqual(rc, 2)
        self.assertIn("--out", err)


class Install(unittest.TestCase):
    def test_make_install_with_prefix_and_destdir(self):
        build = os.path.dirname(os.path.abspath(harness.COFFER_BIN))
        if not os.path.exists(os.path.join(build, "build.ninja")) or not shutil.which("make"):
            self.skipTest("COFFER_BIN is not in a Meson build directory (or no make): nothing to install")
        tmp = tempfile.mkdtemp(prefix="coffer-itest-install-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for extra, base in ((["PREFIX=%s/usr" % tmp], tmp + "/usr"),
                            (["PREFIX=/opt/coffer", "DESTDIR=%s/stage" % tmp], tmp + "/stage/opt/coffer")):
            proc = subprocess.run(["make", "-s", "-C", ROOT, "install", "BUILD=" + build] + extra,
                                  capture_output=True, text=True, timeout=600)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            for rel in ("bin/coffer", "share/man/man1/coffer.1", "share/man/man1/coffer-secrets.1",
                        "share/bash-completion/completions/coffer", "share/zsh/site-functions/_coffer"):
                self.assertTrue(os.path.isfile(os.path.join(base, rel)), rel)
            self.assertTrue(os.access(os.path.join(base, "bin/coffer"), os.X_OK))
            proc = subprocess.run([os.path.join(base, "bin/coffer"), "--version"], capture_output=True,
                                  text=True, timeout=60)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertTrue(proc.stdout.startswith("coffer "), proc.stdout)
            # the scanner is found under PREFIX/libexec/coffer, wherever PREFIX is
            self.assertTrue(os.access(os.path.join(base, "libexec/coffer/coffer-scan"), os.X_OK))
            proc = subprocess.run([os.path.join(base, "bin/coffer"), "scan", "--stdin"], input="x = 1\n",
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            with open(os.path.join(base, "share/bash-completion/completions/coffer")) as f:
                self.assertEqual(f.read(), run("completion", "bash")[1])


class DefaultEnv(ServerTestCase):
    def test_error_says_dev_was_used(self):
        rc, out, err = self.server.cli("projects", "create", unique("env"), "--output", "json")
        self.assertEqual(rc, 0, err)
        project = re.search(r'"id": "([^"]+)"', out).group(1)
        rc, out, err = self.server.cli("secrets", "get", "NOPE", "--projectId", project)
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 404", err)
        self.assertIn("(no --env given: used 'dev')", err)
        for args in (("--env", "dev"), ("--env", "nope")):
            rc, out, err = self.server.cli("secrets", "get", "NOPE", "--projectId", project, *args)
            self.assertEqual(rc, 1)
            self.assertNotIn("no --env given", err)
        rc, out, err = self.server.cli("secrets", "list", "--projectId", project)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("--env", err)


class Transport(ServerTestCase):
    """Every failure to reach a server is said in words, never as a bare OpenSSL or curl code."""

    def assert_said(self, url, words, env=None):
        extra = {"COFFER_API_URL": url, "COFFER_TOKEN": "t" * 20}
        extra.update(env or {})
        rc, out, err = run("projects", "list", env=extra, timeout=60)
        self.assertEqual(rc, 1, err)
        self.assertIn(words, err)
        for code in ("SSL routines", "OpenSSL", "error:0", "CURLE", "Couldn't"):
            self.assertNotIn(code, err)
        return err

    def test_https_to_a_plain_server(self):
        url = self.server.url.replace("http://", "https://")
        self.assert_said(url, "the server at %s does not speak TLS (is it plain http://?)" % url)

    def test_https_to_a_plain_server_that_hangs_up(self):
        """A plain server that closes on a TLS hello without answering (OpenSSL sees only an EOF) is
        still recognised: the CLI asks it once in plain HTTP."""
        import socket
        import threading
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]

        def serve():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    first = conn.recv(4096)
                    if first[:1] == b"\x16":  # a TLS handshake record: hang up
                        continue
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            url = "https://127.0.0.1:%d" % port
            self.assert_said(url, "the server at %s does not speak TLS (is it plain http://?)" % url)
        finally:
            listener.close()

    def test_nothing_listening(self):
        url = "http://127.0.0.1:%d" % harness.free_port()
        self.assert_said(url, "nothing is listening at %s" % url)

    def test_name_does_not_resolve(self):
        self.assert_said("http://coffer-itest.invalid", "does not resolve (DNS)")

    def test_untrusted_and_trusted_certificate(self):
        certdir = tempfile.mkdtemp(prefix="coffer-itest-tls-")
        self.addCleanup(shutil.rmtree, certdir, True)
        cert, key = harness.make_cert(certdir)
        s = Server(args=["--tls-cert", cert, "--tls-key", key])
        try:
            s.start()
            err = self.assert_said(s.url, "the server's certificate is not trusted: ")
            self.assertIn("COFFER_CACERT", err)
            plain = s.url.replace("https://", "http://")
            self.assert_said(plain, "the server at %s closed the connection without an answer" % plain)
            rc, out, err = run("projects", "list", env={"COFFER_API_URL": s.url, "COFFER_TOKEN": s.token,
                                                       "COFFER_CACERT": cert})
            self.assertEqual(rc, 0, err)
        finally:
            s.stop()
            s.cleanup()


class AuditTable(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rc, out, err = cls.server.cli("projects", "create", unique("a-rather-long-project-name-for-tables"),
                                      "--output", "json")
        assert rc == 0, err
        project = re.search(r'"id": "([^"]+)"', out).group(1)
        rc, out, err = cls.server.cli("secrets", "set", "--projectId", project, "--env", "dev",
                                      "A_VERY_LONG_SECRET_NAME_NUMBER_ONE=1", "ANOTHER_QUITE_LONG_SECRET_NAME=2",
                                      "AND_A_THIRD_ONE_FOR_GOOD_MEASURE=3")
        assert rc == 0, err

    def audit_list(self, *args, columns=None):
        # only the secrets events: listing the log is itself an event (http GET /api/v1/audit/events)
        rc, out, err = self.server.cli("audit", "list", "--action", "secrets.", *args, env={"COLUMNS": columns})
        self.assertEqual(rc, 0, err)
        return out.splitlines()

    def test_fits_80_and_120_columns(self):
        full = self.audit_list()
        self.assertGreater(max(len(line) for line in full), 120, "the test needs wide rows")
        for columns in (80, 120):
            lines = self.audit_list(columns=str(columns))
            self.assertEqual(len(lines), len(full))
            self.assertLessEqual(max(len(line) for line in lines), columns, "\n".join(lines))
            self.assertIn("\u2026", "\n".join(lines))
            self.assertTrue(lines[0].startswith("SEQ  TIME"), lines[0])
            for cut, whole in zip(lines[1:], full[1:]):
                self.assertEqual(cut.split()[0], whole.split()[0])  # SEQ is never cut
                for cell in re.split(r"\s{2,}", cut):
                    if cell.endswith("\u2026"):
                        self.assertIn(cell[:-1], whole)

    def test_pipe_and_wide_show_everything(self):
        full = self.audit_list()
        self.assertNotIn("\u2026", "\n".join(full))
        self.assertEqual(self.audit_list("--wide", columns="80"), full)
        self.assertTrue(any("A_VERY_LONG_SECRET_NAME_NUMBER_ONE" in line for line in full))

    def test_json_is_not_cut(self):
        rc, out, err = self.server.cli("audit", "list", "--output", "json", env={"COLUMNS": "80"})
        self.assertEqual(rc, 0, err)
        self.assertIn("A_VERY_LONG_SECRET_NAME_NUMBER_ONE", out)


if __name__ == "__main__":
    unittest.main()
