"""`coffer scan` (docs/scan.md): the real CLI on real files, real git repositories and a real server.

- files and directories: findings with path, line and column, redacted (first and last two characters only:
  the secret itself appears in no output), exit 1 with findings and 0 without; .gitignore honoured; binary
  files skipped and counted; `coffer:allow` lines left out; a baseline accepting earlier findings and only
  those; --stdin; user rules from a YAML file;
- a 64 MiB file on one line, with tokens across chunk boundaries, found, in bounded memory (the resident size
  grows by less than 16 MiB over a small scan's);
- text, JSON and SARIF output; the SARIF validated against the SARIF 2.1.0 JSON schema with Ajv (npm: the
  schema file ships in @microsoft/jest-sarif; tests/scan/package.json);
- git history: a secret added in one commit and removed in the next is reported with that commit, author,
  date, path and line; --since leaves older commits out; --all reaches other branches; binary blobs skipped;
- the pre-commit hook from `install-hook` refusing a commit with a planted secret (and the commit not made),
  letting a clean one through, and not overwritten without --force;
- known values: with a token, the values stored in Coffer are found raw, base64 (at any alignment inside a
  longer base64 text), base64url and URL-encoded, naming project/env/path/key; values shorter than 8 bytes
  skipped and said; a bad token is an error (exit 2);
- user rules from a gitleaks.toml: its rule's stopwords and the global path allow list honoured; a malformed
  TOML file refused naming file and line;
- bad input: unknown options, bad --output, missing paths, broken rule files, a bad baseline, --since of no
  commit, not a repository: a message naming the problem and exit 2.

Tokens are generated here in each provider's shape from harness.seeded_random; none is real. The suite does not
depend on the storage backend (the server only holds the known values) and skips itself on PostgreSQL.
"""

import base64
import fcntl
import hashlib
import json
import os
import shutil
import stat
import string
import subprocess
import tempfile
import unittest
import urllib.parse

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SARIF_DIR = os.path.join(ROOT, "tests", "scan")
ALNUM = string.ascii_letters + string.digits
SKIP_PG = "coffer scan reads files, git and the API; the storage backend plays no part"


def gen(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def github_token(rng):
    return "ghp_" + gen(rng, ALNUM, 36)


def aws_key(rng):
    return "AKIA" + gen(rng, string.ascii_uppercase + "234567", 16)


def redacted(secret):
    return secret[:2] + "..." + secret[-2:]


def run_coffer(args, cwd=None, input=None, env=None):
    return harness.run(list(args), env=env, input=input, cwd=cwd)


def git(cwd, *args, check=True):
    env = harness.base_env({"GIT_AUTHOR_NAME": "Ada Tester", "GIT_AUTHOR_EMAIL": "ada@example.test",
                            "GIT_COMMITTER_NAME": "Ada Tester", "GIT_COMMITTER_EMAIL": "ada@example.test",
                            "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"})
    proc = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"] + list(args),
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError("git %s: %s%s" % (" ".join(args), proc.stdout, proc.stderr))
    return proc


def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(text)


class ScanBase(unittest.TestCase):
    def setUp(self):
        if harness.BACKEND == "postgres":
            self.skipTest(SKIP_PG)
        self.rng = harness.seeded_random(self)
        self.dir = tempfile.mkdtemp(prefix="coffer-scan-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def scan_json(self, *args, cwd=None, want_rc=1, input=None, env=None):
        args = list(args)
        # the subcommand stays first
        head = [args.pop(0)] if args and args[0] in ("git", "install-hook") else []
        rc, out, err = run_coffer(["scan"] + head + ["--output", "json"] + args, cwd=cwd or self.dir,
                                  input=input, env=env)
        self.assertEqual(rc, want_rc, "coffer scan %s: %s" % (" ".join(args), err))
        return json.loads(out)

    def assertNoSecret(self, secrets, *texts):
        for s in secrets:
            for t in texts:
                self.assertNotIn(s, t, "a secret appears in the output")


class Files(ScanBase):
    def test_findings_redacted_with_place_and_exit_status(self):
        gh, aws = github_token(self.rng), aws_key(self.rng)
        write(os.path.join(self.dir, "src", "app.py"), "import os\n\nTOKEN = '%s'\nkey_id = %s\n" % (gh, aws))
        write(os.path.join(self.dir, "README.md"), "nothing to see\n")
        rc, out, err = run_coffer(["scan", "."], cwd=self.dir)
        self.assertEqual(rc, 1, err)
        self.assertIn("./src/app.py:3:10: github-token: GitHub token: %s" % redacted(gh), out)
        self.assertIn("./src/app.py:4:10: aws-access-key-id: AWS access key id: %s" % redacted(aws), out)
        self.assertIn("2 findings (2 files", err)
        self.assertNoSecret([gh, aws, gh[4:-2], aws[4:-2]], out, err)
        data = self.scan_json(".")
        self.assertEqual([(f["path"], f["line"], f["ruleId"]) for f in data["findings"]],
                         [("./src/app.py", 3, "github-token"), ("./src/app.py", 4, "aws-access-key-id")])
        self.assertEqual(data["summary"]["files"], 2)
        # clean
        os.unlink(os.path.join(self.dir, "src", "app.py"))
        rc, out, err = run_coffer(["scan", "."], cwd=self.dir)
        self.assertEqual((rc, out), (0, ""), err)

    def test_scanner_runs_as_its_own_program(self):
        # coffer runs coffer-scan, found beside it; coffer alone (copied elsewhere) says what is missing
        self.assertTrue(os.access(os.path.join(os.path.dirname(harness.COFFER_BIN), "coffer-scan"), os.X_OK))
        alone = os.path.join(self.dir, "bin", "coffer")
        os.makedirs(os.path.dirname(alone))
        shutil.copy(harness.COFFER_BIN, alone)
        write(os.path.join(self.dir, "a.txt"), "TOKEN = '%s'\n" % github_token(self.rng))
        proc = subprocess.run([alone, "scan", self.dir], capture_output=True, text=True, timeout=60,
                              env=harness.base_env())
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertIn("the scanner is not installed: neither %s/bin/coffer-scan nor %s/bin/../libexec/coffer/"
                      "coffer-scan exists" % (self.dir, self.dir), proc.stderr)
        self.assertEqual(proc.stdout, "")
        # the help of the command comes from coffer itself (completion and man pages are made from it)
        proc = subprocess.run([alone, "help", "scan"], capture_output=True, text=True, timeout=60,
                              env=harness.base_env())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("usage: coffer scan [PATH...]", proc.stdout)
        # and coffer-scan is not a command of its own
        proc = subprocess.run([os.path.join(os.path.dirname(harness.COFFER_BIN), "coffer-scan"), "."],
                              capture_output=True, text=True, timeout=60, env=harness.base_env())
        self.assertEqual(proc.returncode, 2)
        self.assertIn("run by 'coffer scan'", proc.stderr)

    def test_gitignore_binary_and_allow_mark(self):
        git(self.dir, "init", "-q")
        tokens = [github_token(self.rng) for _ in range(4)]
        write(os.path.join(self.dir, ".gitignore"), "build/\n*.log\n")
        write(os.path.join(self.dir, "build", "out.txt"), tokens[0] + "\n")
        write(os.path.join(self.dir, "debug.log"), tokens[1] + "\n")
        write(os.path.join(self.dir, "blob.bin"), b"\x00\x01" + tokens[2].encode() + b"\n", "wb")
        write(os.path.join(self.dir, "ok.txt"), "t = '%s'  # coffer:allow: test fixture\n" % tokens[3])
        write(os.path.join(self.dir, "sub", "found.txt"), "x\n" + tokens[3] + "\n")
        data = self.scan_json(".")
        self.assertEqual([(f["path"], f["line"]) for f in data["findings"]], [("./sub/found.txt", 2)])
        self.assertEqual(data["summary"]["binarySkipped"], 1)
        # a file named on the command line is scanned even when ignored
        data = self.scan_json("debug.log")
        self.assertEqual(len(data["findings"]), 1)

    def test_stdin_and_user_rules(self):
        rules = os.path.join(self.dir, "rules.yaml")
        write(rules, "rules:\n  - id: acme-key\n    description: ACME key\n    regex: 'acme_([a-z0-9]{20})'\n"
                     "    keywords: [acme]\n    entropy: 3\n")
        key = "acme_" + gen(self.rng, string.ascii_lowercase + string.digits, 20)
        data = self.scan_json("--stdin", "--rules", rules, input="line\nuse %s here\n" % key)
        self.assertEqual([(f["path"], f["line"], f["column"], f["ruleId"], f["secret"]) for f in data["findings"]],
                         [("(stdin)", 2, 10, "acme-key", redacted(key[5:]))])
        # --no-builtin: only the user's rules
        gh = github_token(self.rng)
        data = self.scan_json("--stdin", "--rules", rules, "--no-builtin", input=gh + "\n", want_rc=0)
        self.assertEqual(data["findings"], [])

    def test_baseline_accepts_earlier_findings_only(self):
        first = github_token(self.rng)
        write(os.path.join(self.dir, "a.txt"), first + "\n")
        data = self.scan_json(".")
        baseline = os.path.join(tempfile.mkdtemp(prefix="coffer-baseline-"), "baseline.json")
        self.addCleanup(shutil.rmtree, os.path.dirname(baseline), True)
        write(baseline, json.dumps(data))
        data = self.scan_json(".", "--baseline", baseline, want_rc=0)
        self.assertEqual(data["summary"]["baselined"], 1)
        second = github_token(self.rng)
        write(os.path.join(self.dir, "a.txt"), first + "\n" + second + "\n")
        data = self.scan_json(".", "--baseline", baseline)
        self.assertEqual([(f["line"], f["secret"]) for f in data["findings"]], [(2, redacted(second))])

    def test_huge_file_streamed_in_bounded_memory(self):
        size = 64 * 1024 * 1024
        small = os.path.join(self.dir, "small.txt")
        big = os.path.join(self.dir, "big.txt")
        tokens = [github_token(self.rng) for _ in range(3)]
        write(small, " %s \n" % tokens[0])
        # one line of 64 MiB: tokens straddling the first two 1 MiB chunk boundaries and at the end
        places = [1024 * 1024 - 20, 2 * 1024 * 1024 + 1024 * 1024 - 7, size - 60]
        with open(big, "wb") as f:
            pos = 0
            for at, token in zip(places, tokens):
                f.write(b"x" * (at - pos) + b" " + token.encode() + b" ")
                pos = at + len(token) + 2
            f.write(b"y" * (size - pos))

        def max_rss(path):
            proc = subprocess.Popen([harness.COFFER_BIN, "scan", "--output", "json", path],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=harness.base_env())
            out, err = proc.communicate(timeout=120)
            _, status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (0, 0, None)
            return proc.returncode, json.loads(out), err.decode(), usage

        # os.wait4 needs the child unreaped: run it by hand
        def measured(path):
            pid = os.fork()
            if pid == 0:
                fd = os.open(os.devnull, os.O_WRONLY)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.execve(harness.COFFER_BIN, [harness.COFFER_BIN, "scan", path], harness.base_env())
            _, status, usage = os.wait4(pid, 0)
            return os.waitstatus_to_exitcode(status), usage.ru_maxrss  # KiB on Linux

        rc_small, rss_small = measured(small)
        rc_big, rss_big = measured(big)
        self.assertEqual((rc_small, rc_big), (1, 1))
        self.assertLess(rss_big - rss_small, 16 * 1024,
                        "scanning 64 MiB took %d KiB more than a small file" % (rss_big - rss_small))
        data = self.scan_json(big)
        self.assertEqual([(f["column"], f["secret"]) for f in data["findings"]],
                         [(at + 2, redacted(t)) for at, t in zip(places, tokens)])
        self.assertEqual(data["summary"]["bytes"], size)
        del max_rss

    def test_compiled_rules_cache(self):
        gh = github_token(self.rng)
        write(os.path.join(self.dir, "src", "a.py"), "TOKEN = '%s'\n" % gh)
        write(os.path.join(self.dir, "rules.yaml"),
              "rules:\n  - id: only-this\n    description: a word\n    regex: 'zanzibar[0-9]{4}'\n")
        home = tempfile.mkdtemp(prefix="coffer-scan-cache-")
        self.addCleanup(shutil.rmtree, home, True)
        env = harness.base_env({"XDG_CACHE_HOME": home})
        cache = os.path.join(home, "coffer")

        def files():
            return sorted(f for f in os.listdir(cache) if f.endswith(".hsdb")) if os.path.isdir(cache) else []

        def findings(*extra, want_err=None):
            rc, out, err = run_coffer(["scan", "--output", "json", "src"] + list(extra), cwd=self.dir, env=env)
            self.assertEqual(rc, 1, err)
            if want_err:
                self.assertIn(want_err, err)
            else:
                self.assertEqual(err.count("not caching"), 0, err)
            return [(f["path"], f["line"], f["ruleId"]) for f in json.loads(out)["findings"]]

        expected = findings("--no-cache")
        self.assertEqual(expected, [("src/a.py", 1, "github-token")])
        self.assertEqual(files(), [], "--no-cache wrote a cache")
        # the first run compiles and stores, in a directory and a file that are the user's alone
        self.assertEqual(findings(), expected)
        [name] = files()
        self.assertRegex(name, r"^scan-[0-9a-f]{64}\.hsdb$")
        path = os.path.join(cache, name)
        self.assertEqual(stat.S_IMODE(os.stat(cache).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path, "rb") as f:
            stored = f.read()
        # the next runs read it: the same file (not written again), marked as used
        inode = os.stat(path).st_ino
        os.utime(path, (1, 1))
        self.assertEqual(findings(), expected)
        self.assertEqual(os.stat(path).st_ino, inode)
        self.assertGreater(os.stat(path).st_mtime, 1)
        # another rule set is another file
        rc, _, err = run_coffer(["scan", "--no-builtin", "--rules", "rules.yaml", "src"], cwd=self.dir, env=env)
        self.assertEqual(rc, 0, err)
        [other] = [f for f in files() if f != name]
        with open(os.path.join(cache, other), "rb") as f:
            other_bytes = f.read()
        # what does not read back exactly is not used, and is replaced: a flipped byte in the database, a cut
        # file, the other rule set's database under this one's name
        flipped = bytearray(stored)
        flipped[len(flipped) // 2] ^= 0x40
        for bad in (bytes(flipped), stored[:100], other_bytes, b""):
            with open(path, "wb") as f:
                f.write(bad)
            self.assertEqual(findings(), expected)
            with open(path, "rb") as f:
                self.assertEqual(len(f.read()), len(stored))
        # a directory others may write to is not used (a database planted there could hide findings)
        os.chmod(cache, 0o777)
        inode = os.stat(path).st_ino
        os.unlink(os.path.join(cache, other))
        rc, out, err = run_coffer(["scan", "src"], cwd=self.dir, env=env)
        self.assertEqual(rc, 1, err)
        self.assertIn("not caching the compiled rules: '%s' is writable by others (chmod 700 it)" % cache, err)
        rc, _, err = run_coffer(["scan", "--no-builtin", "--rules", "rules.yaml", "src"], cwd=self.dir, env=env)
        self.assertEqual(rc, 0, err)
        self.assertEqual(files(), [name], "a cache was written into a directory others may write to")
        self.assertEqual(os.stat(path).st_ino, inode)
        os.chmod(cache, 0o700)
        # at most 16 files: the least recently used go, and so do temporary files of cut-off writes
        for i in range(20):
            fake = os.path.join(cache, "scan-%064x.hsdb" % i)
            with open(fake, "wb") as f:
                f.write(b"not a database")
            os.utime(fake, (1000 + i, 1000 + i))
        stale = os.path.join(cache, name + ".tmp.abc123")
        with open(stale, "wb") as f:
            f.write(b"half")
        os.utime(stale, (1000, 1000))
        rc, _, err = run_coffer(["scan", "--no-builtin", "--rules", "rules.yaml", "src"], cwd=self.dir, env=env)
        self.assertEqual(rc, 0, err)
        left = files()
        self.assertEqual(len(left), 16, left)
        self.assertIn(name, left)
        self.assertNotIn("scan-%064x.hsdb" % 0, left)
        self.assertFalse(os.path.exists(stale))
        # no home at all, or one where nothing can be made: the scan still runs, without a cache and without a
        # word about it
        for home_env in ({"XDG_CACHE_HOME": None, "HOME": None},
                         {"XDG_CACHE_HOME": None, "HOME": os.path.join(self.dir, "no", "such", "home")}):
            rc, out, err = run_coffer(["scan", "src"], cwd=self.dir, env=harness.base_env(home_env))
            self.assertEqual((rc, "not caching" in err), (1, False), err)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "no")))

    def test_sarif_validates_against_the_schema(self):
        validator = sarif_validator(self)
        write(os.path.join(self.dir, "dir with space", "k\u00e9y.env"),
              "GITHUB_TOKEN=%s\nAWS=%s\n" % (github_token(self.rng), aws_key(self.rng)))
        path = os.path.join(self.dir, "out.sarif")
        rc, out, err = run_coffer(["scan", "--output", "sarif", "."], cwd=self.dir)
        self.assertEqual(rc, 1, err)
        write(path, out)
        sarif = json.loads(out)
        results = sarif["runs"][0]["results"]
        self.assertEqual(sarif["version"], "2.1.0")
        self.assertEqual([r["ruleId"] for r in results], ["github-token", "aws-access-key-id"])
        self.assertEqual(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                         "dir%20with%20space/k%C3%A9y.env")
        rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        self.assertEqual(rules[results[0]["ruleIndex"]]["id"], "github-token")
        proc = subprocess.run(validator + [path], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("valid", proc.stdout)
        # the validator can fail: a result without its message is refused
        del sarif["runs"][0]["results"][0]["message"]
        write(path, json.dumps(sarif))
        proc = subprocess.run(validator + [path], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertIn("message", proc.stdout)

    def test_bad_input(self):
        bad_rules = os.path.join(self.dir, "bad.yaml")
        write(bad_rules, "rules:\n  - id: x\n    regex: 'a(b'\n")
        bad_yaml = os.path.join(self.dir, "bad2.yaml")
        write(bad_yaml, "rules:\n  - id: x\n    rgex: a\n")
        bad_base = os.path.join(self.dir, "base.json")
        write(bad_base, "{\"findings\": 3}")
        cases = [
            (["scan", "--bogus"], "unknown option"),
            (["scan", "--output", "xml"], "--output takes text, json or sarif"),
            (["scan", "no/such/path"], "cannot read 'no/such/path'"),
            (["scan", "--rules", bad_rules], "rule 'x': regex does not compile"),
            (["scan", "--rules", bad_yaml], "line 3: unknown key 'rgex'"),
            (["scan", "--rules", "missing.yaml"], "cannot read rules file 'missing.yaml'"),
            (["scan", "--baseline", bad_base], "has no 'findings' list"),
            (["scan", "--no-builtin"], "--no-builtin needs --rules"),
            (["scan", "--stdin", "a.txt"], "--stdin takes no PATH"),
            (["scan", "--threads", "0"], "--threads takes 1 to 64"),
            (["scan", "--projectId", "p"], "--projectId goes with --known"),
            (["scan", "git", "--since", "nope"], "revision 'nope' is not a commit"),
            (["scan", "git", self.dir], "is not in a git repository"),
            (["scan", "--staged", self.dir], "is not in a git repository"),
            (["scan", "install-hook", self.dir], "is not in a git repository"),
        ]
        git_dir = os.path.join(self.dir, "repo")
        os.makedirs(git_dir)
        git(git_dir, "init", "-q")
        write(os.path.join(git_dir, "f.txt"), "x\n")
        git(git_dir, "add", "f.txt")
        git(git_dir, "commit", "-q", "-m", "one")
        for args, words in cases:
            cwd = git_dir if args[1:3] == ["git", "--since"] else self.dir
            rc, out, err = run_coffer(args, cwd=cwd)
            self.assertEqual(rc, 2, "%s: %s %s" % (args, out, err))
            self.assertIn(words, err, args)
        rc, out, err = run_coffer(["scan", "--help"])
        self.assertEqual(rc, 0)
        self.assertIn("coffer scan git", out)


class Git(ScanBase):
    def make_history(self):
        repo = os.path.join(self.dir, "repo")
        os.makedirs(repo)
        git(repo, "init", "-q")
        self.secret = github_token(self.rng)
        write(os.path.join(repo, "app", "config.py"), "DEBUG = True\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "start")
        write(os.path.join(repo, "app", "config.py"), "DEBUG = True\nTOKEN = '%s'\n" % self.secret)
        write(os.path.join(repo, "logo.png"), b"\x89PNG\x00\x00" + github_token(self.rng).encode(), "wb")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "add token")
        self.leak = git(repo, "rev-parse", "HEAD").stdout.strip()
        write(os.path.join(repo, "app", "config.py"), "DEBUG = True\nTOKEN = os.environ['TOKEN']\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "remove token")
        return repo

    def test_secret_added_then_removed_is_found_in_history(self):
        repo = self.make_history()
        # the work tree is clean now
        data = self.scan_json("app", cwd=repo, want_rc=0)
        self.assertEqual(data["findings"], [])
        data = self.scan_json("git", cwd=repo)
        self.assertEqual(len(data["findings"]), 1, data)
        f = data["findings"][0]
        self.assertEqual((f["commit"], f["author"], f["email"], f["path"], f["line"], f["ruleId"], f["secret"]),
                         (self.leak, "Ada Tester", "ada@example.test", "app/config.py", 2, "github-token",
                          redacted(self.secret)))
        self.assertRegex(f["date"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(data["summary"]["commits"], 3)
        self.assertEqual(data["summary"]["binarySkipped"], 1)
        rc, out, err = run_coffer(["scan", "git"], cwd=repo)
        self.assertEqual(rc, 1)
        self.assertIn("app/config.py:2:10: github-token: GitHub token: %s [commit %s by Ada Tester "
                      "<ada@example.test> on " % (redacted(self.secret), self.leak[:12]), out)
        self.assertNoSecret([self.secret], out, err)
        # --since the leaking commit: only the removal is scanned
        data = self.scan_json("git", "--since", self.leak, cwd=repo, want_rc=0)
        self.assertEqual((data["findings"], data["summary"]["commits"]), ([], 1))
        # another branch's commit: only with --all
        git(repo, "checkout", "-q", "-b", "side", "HEAD~2")
        other = aws_key(self.rng)
        write(os.path.join(repo, "side.txt"), other + "\n")
        git(repo, "add", "side.txt")
        git(repo, "commit", "-q", "-m", "side")
        git(repo, "checkout", "-q", "main")
        data = self.scan_json("git", cwd=repo)
        self.assertEqual([f["ruleId"] for f in data["findings"]], ["github-token"])
        data = self.scan_json("git", "--all", cwd=repo)
        self.assertEqual(sorted(f["ruleId"] for f in data["findings"]), ["aws-access-key-id", "github-token"])

    def test_hook_refuses_a_commit_with_a_secret(self):
        repo = os.path.join(self.dir, "repo")
        os.makedirs(repo)
        git(repo, "init", "-q")
        rc, out, err = run_coffer(["scan", "install-hook"], cwd=repo)
        self.assertEqual(rc, 0, err)
        hook = os.path.join(repo, ".git", "hooks", "pre-commit")
        self.assertIn("wrote " + hook, out)
        self.assertTrue(os.access(hook, os.X_OK))
        # not overwritten without --force
        rc, out, err = run_coffer(["scan", "install-hook"], cwd=repo)
        self.assertEqual(rc, 2)
        self.assertIn("pass --force", err)
        rc, out, err = run_coffer(["scan", "install-hook", "--force"], cwd=repo)
        self.assertEqual(rc, 0, err)
        # a clean first commit goes through
        write(os.path.join(repo, "a.txt"), "hello\n")
        git(repo, "add", "a.txt")
        git(repo, "commit", "-q", "-m", "clean")
        # a planted secret is refused, naming the file and line, and no commit is made
        secret = github_token(self.rng)
        write(os.path.join(repo, "a.txt"), "hello\nGH='%s'\n" % secret)
        git(repo, "add", "a.txt")
        data = self.scan_json("--staged", cwd=repo)
        self.assertEqual([(f["path"], f["line"]) for f in data["findings"]], [("a.txt", 2)])
        proc = git(repo, "commit", "-q", "-m", "leak", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("a.txt:2:5: github-token", proc.stdout + proc.stderr)
        self.assertNoSecret([secret], proc.stdout, proc.stderr)
        self.assertEqual(git(repo, "rev-list", "--count", "HEAD").stdout.strip(), "1")
        # removed from the index: the commit goes through
        write(os.path.join(repo, "a.txt"), "hello\nGH=os.environ['GH']\n")
        git(repo, "add", "a.txt")
        git(repo, "commit", "-q", "-m", "fixed")
        self.assertEqual(git(repo, "rev-list", "--count", "HEAD").stdout.strip(), "2")


class TomlRules(ScanBase):
    """User rules from a TOML file (docs/scan.md "Rules"): a gitleaks.toml as gitleaks writes it, its rule and global
    allow lists (stopwords, paths) honoured; a malformed file refused naming file and line (exit 2)."""

    def test_gitleaks_toml(self):
        rules = os.path.join(self.dir, "gitleaks.toml")
        write(rules, 'title = "gitleaks config"\n\n[allowlist]\npaths = [\'\'\'(^|/)vendor/\'\'\']\n\n'
                     '[[rules]]\nid = "acme-key"\ndescription = "ACME key"\n'
                     "regex = '''acme_([a-z0-9]{20})'''\nsecretGroup = 1\nentropy = 3\nkeywords = [\"acme\"]\n"
                     'tags = ["acme"]\n[rules.allowlist]\nstopwords = ["fixture"]\n')
        key = "acme_" + gen(self.rng, string.ascii_lowercase + string.digits, 20)
        tree = os.path.join(self.dir, "tree")
        write(os.path.join(tree, "app.py"), "k = '%s'\n" % key)
        write(os.path.join(tree, "vendor", "lib.py"), "k = '%s'\n" % key)
        write(os.path.join(tree, "test.py"), "k = 'acme_fixture0a1b2c3d4e5f6'\n")
        data = self.scan_json("--rules", rules, "--no-builtin", tree)
        self.assertEqual([(os.path.relpath(f["path"], tree), f["ruleId"], f["secret"]) for f in data["findings"]],
                         [("app.py", "acme-key", redacted(key[5:]))])
        # a rule's path: it reports only in the files whose path matches
        write(rules, "[[rules]]\nid = 'acme-env'\ndescription = 'ACME key in env files'\n"
                     "regex = '''acme_([a-z0-9]{20})'''\npath = '''(^|/)[^/]*\\.env$'''\n")
        write(os.path.join(tree, "deploy", "prod.env"), "ACME=%s\n" % key)
        data = self.scan_json("--rules", rules, "--no-builtin", tree)
        self.assertEqual([(os.path.relpath(f["path"], tree), f["ruleId"]) for f in data["findings"]],
                         [("deploy/prod.env", "acme-env")])
        for text, words in (("[[rules]\n", "line 1"),
                            ("[[rules]]\nid = 'a'\nregex = 'x'\nbogus = 'y'\n", "line 4: unknown key 'bogus'"),
                            ("[[rules]]\nid = 'a'\npath = 'y'\n",
                             "line 1: a rule with 'path' and no 'regex' (one that reports files by their name "
                             "alone) is not supported")):
            write(rules, text)
            rc, out, err = run_coffer(["scan", "--rules", rules, tree], cwd=self.dir)
            self.assertEqual(rc, 2, out + err)
            self.assertIn("rules file '%s', %s" % (rules, words), err)
        write(rules, "[[rules]]\nid = 'a'\nregex = 'x'\npath = '('\n")
        rc, out, err = run_coffer(["scan", "--rules", rules, tree], cwd=self.dir)
        self.assertEqual(rc, 2, out + err)
        self.assertIn("rule 'a', its path: path expression '(' does not compile", err)


class Known(harness.ServerTestCase):
    def setUp(self):
        if harness.BACKEND == "postgres":
            self.skipTest(SKIP_PG)
        super().setUp()
        self.rng = harness.seeded_random(self)
        self.dir = tempfile.mkdtemp(prefix="coffer-scan-known-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_known_values_in_every_encoding(self):
        project = self.create_project()
        pid, slug = project["id"], project["slug"]
        # a value with characters that base64 and URL encoding change, and no shape any rule knows
        # ("~~~" encodes to "fn5+" in base64 and "fn5-" in base64url, so the two forms differ)
        value = "~~~pw:" + gen(self.rng, ALNUM, 10) + "/+ &" + gen(self.rng, ALNUM, 6)
        self.create_folder(pid, "prod", "db")
        self.set_secret(pid, "DB_PASSWORD", value, env="prod", path="/db")
        self.set_secret(pid, "PIN", "1234", env="dev")
        b64_inner = base64.b64encode(b"user:" + value.encode()).decode()  # value at an offset of 5
        files = {
            "raw.txt": "conn = %s\n" % value,
            "b64.txt": "header: Basic %s\n" % b64_inner,
            "b64url.txt": "x\n" + base64.urlsafe_b64encode(value.encode()).decode().rstrip("=") + "\n",
            "url.txt": "a\nb\nhttps://h/?p=%s\n" % urllib.parse.quote(value, safe=""),
            "clean.txt": "nothing here but %s\n" % value[:5],
        }
        for name, text in files.items():
            write(os.path.join(self.dir, name), text)
        # a database holding known values is never cached
        cache_home = tempfile.mkdtemp(prefix="coffer-scan-known-cache-")
        self.addCleanup(shutil.rmtree, cache_home, True)
        known_env = dict(self.server.cli_env(), XDG_CACHE_HOME=cache_home)
        rc, out, err = harness.run(["scan", "--known", "--output", "json", self.dir], env=known_env)
        self.assertEqual(os.listdir(cache_home), [])
        self.assertEqual(rc, 1, err)
        data = json.loads(out)
        got = sorted((os.path.basename(f["path"]), f["line"], f["encoding"], f["cofferSecret"])
                     for f in data["findings"] if f["ruleId"] == "coffer-known-value")
        label = "%s/prod/db/DB_PASSWORD" % slug
        self.assertEqual(got, [("b64.txt", 1, "base64", label), ("b64url.txt", 2, "base64url", label),
                               ("raw.txt", 1, "raw", label), ("url.txt", 3, "url", label)])
        self.assertEqual(data["summary"]["knownValuesSkipped"], 1)
        self.assertIn("1 known value shorter than 8 bytes not matched", err)
        for text in (out, err):
            self.assertNotIn(value, text)
            self.assertNotIn(b64_inner, text)
        # the text output names the Coffer secret
        rc, out, err = harness.run(["scan", "--known", "--projectId", pid, self.dir], env=self.server.cli_env())
        self.assertEqual(rc, 1, err)
        self.assertIn("coffer-known-value: value of Coffer secret '%s' (raw): %s" % (label, redacted(value)), out)
        # a token the server refuses: an error, not a clean scan
        rc, out, err = harness.run(["scan", "--known", self.dir], env=self.server.cli_env(token="cfadm_wrong"))
        self.assertEqual(rc, 2, out + err)
        self.assertIn("HTTP 401", err)


_validator = None


def sarif_validator(test):
    """[node, validate.mjs] with tests/scan's pinned packages installed (npm ci once per lock file, in a cache
    directory under the temporary directory, shared by concurrent runs through a lock)."""
    global _validator
    if _validator:
        return _validator
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        test.skipTest("node and npm are needed for the SARIF schema check (scripts/deps.sh installs them)")
    with open(os.path.join(SARIF_DIR, "package-lock.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = os.path.join(tempfile.gettempdir(), "coffer-scan-sarif-" + digest)
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in ("package.json", "package-lock.json", "validate.mjs"):
            shutil.copy(os.path.join(SARIF_DIR, name), os.path.join(cache, name))
        if not os.path.exists(os.path.join(cache, ".installed")):
            proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=cache,
                                  capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                raise AssertionError("npm ci in %s failed:\n%s" % (cache, proc.stdout + proc.stderr))
            open(os.path.join(cache, ".installed"), "w").close()
    _validator = [node, os.path.join(cache, "validate.mjs")]
    return _validator


if __name__ == "__main__":
    unittest.main()
