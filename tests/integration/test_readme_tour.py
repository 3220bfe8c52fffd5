"""README.md's five-minute tour, run as written, and `make run`'s address.

The tour's shell blocks are those preceded by an HTML comment that starts with `<!-- tour` (the first one says the
convention). They run in order in one `bash -e`, in an empty directory, against a fresh server (no bootstrap token:
its first start prints the admin token, as the README shows). The test supplies what a reader's terminal holds:
COFFER_TOKEN (the printed admin token) and COFFER_API_URL (the server's address), and `coffer` as a wrapper on PATH
for $COFFER_BIN; it skips the lines `export COFFER_TOKEN=...` and `alias coffer=...` and replaces
http://127.0.0.1:8080 with the server's URL. A command that fails stops the tour, and the test names the README
line. Then the output of each block is checked against what the prose around it promises: masked values, the
deploy step seeing its secrets, a byte-exact PEM through `eval "$(coffer export --format=dotenv-export ...)"`, a
403 naming the place, exit 3 from `coffer expiring --fail`, history and rollback, and the API's JSON.

`make run`: ADDR= and DATA_DIR= become --addr and --data-dir, and without them the Makefile passes neither, so
COFFER_ADDR / COFFER_DATA_DIR from the environment (else the server's defaults) apply.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

README = os.path.join(harness.REPO, "README.md")
MARKER_RE = re.compile(r"^<!-- tour\b")
SKIPPED_RE = re.compile(r"^\s*(export COFFER_TOKEN=|alias coffer=)")
README_URL = "http://127.0.0.1:8080"
BLOCK_MARK = "@@tour block %d@@"


def tour_blocks(text):
    """[(first README line number, [lines])] of the fenced sh blocks that follow a `<!-- tour` comment."""
    lines = text.split("\n")
    blocks, i, armed = [], 0, False
    while i < len(lines):
        line = lines[i]
        if MARKER_RE.match(line):
            armed = True
        elif armed and line.strip() in ("```sh", "```bash"):
            start, body = i + 2, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start, body))
            armed = False
        i += 1
    return blocks


class Tour(harness.ServerTestCase):
    server_bootstrap_token = None  # a fresh server prints its own, as `make run` does

    @classmethod
    def setUpClass(cls):
        with open(README, encoding="utf-8") as f:
            cls.blocks = tour_blocks(f.read())
        cls.tmp = tempfile.mkdtemp(prefix="coffer-tour-")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def block_with(self, needle):
        found = [n for n, (_, body) in enumerate(self.blocks) if any(needle in l for l in body)]
        self.assertEqual(len(found), 1, "exactly one tour block of README.md holds %r" % needle)
        return found[0]

    def script(self):
        """The bash script and, per script line, the README line it came from (or None)."""
        out, origin = ["trap 'echo \"@@tour failed at script line $LINENO: $BASH_COMMAND\" >&2' ERR"], [None]
        for n, (start, body) in enumerate(self.blocks):
            out.append("echo '%s'; echo '%s' >&2" % (BLOCK_MARK % n, BLOCK_MARK % n))
            origin.append(None)
            for k, line in enumerate(body):
                if SKIPPED_RE.match(line):
                    line = ":  # supplied by the test: " + line.strip().split("=", 1)[0]
                out.append(line.replace(README_URL, self.server.url))
                origin.append(start + k)
        return "\n".join(out) + "\n", origin

    def run_tour(self):
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        wrapper = os.path.join(bindir, "coffer")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nexec "%s" "$@"\n' % harness.COFFER_BIN)
        os.chmod(wrapper, 0o755)
        work = os.path.join(self.tmp, "work")
        os.makedirs(work, exist_ok=True)
        script, origin = self.script()
        path = os.path.join(self.tmp, "tour.sh")
        with open(path, "w") as f:
            f.write(script)
        env = harness.base_env({
            "COFFER_TOKEN": self.token,
            "COFFER_API_URL": self.server.url,
            "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.path.join(self.tmp, "home"),
            "XDG_CONFIG_HOME": os.path.join(self.tmp, "config"),
            "TMPDIR": self.tmp,
        })
        proc = subprocess.run(["bash", "-eE", path], cwd=work, env=env, capture_output=True, timeout=300)
        out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        report = harness.sanitizer_report(err)
        if report:
            self.fail("sanitizer report from the tour:\n" + report)
        if proc.returncode != 0:
            # The ERR trap's line, or bash's own message (a syntax error stops it before any trap).
            m = (re.search(r"@@tour failed at script line (\d+): (.*)", err)
                 or re.search(r"tour\.sh: line (\d+): (.*)", err))
            where = "?"
            if m:
                line = origin[int(m.group(1)) - 1] if int(m.group(1)) - 1 < len(origin) else None
                where = "README.md line %s: %s" % (line, m.group(2))
            self.fail("the tour stopped (exit %d) at %s\nstdout:\n%s\nstderr:\n%s"
                      % (proc.returncode, where, out[-3000:], err[-3000:]))
        return self.split(out), self.split(err)

    @staticmethod
    def split(text):
        parts = re.split(r"^@@tour block (\d+)@@\n", text, flags=re.M)
        return {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}

    def test_the_tour_runs_as_written(self):
        self.assertGreaterEqual(len(self.blocks), 5, "README.md lost its marked tour blocks")
        # The first start prints the admin token the tour begins with, as the README shows it.
        m = re.search(r"^admin token: (cfadm_\S+)\n\(shown once; only its keyed hash is stored\. "
                      r"Use it as COFFER_TOKEN\.\)$", self.server.stdout, re.M)
        self.assertTrue(m, self.server.stdout)
        self.token = m.group(1)
        out, err = self.run_tour()
        self.assertEqual(sorted(out), list(range(len(self.blocks))), "every block ran")

        # 1-2: the admin's part. Values are masked in the list; ids were captured.
        admin = out[self.block_with("universal-auth attach")]
        for name in ("DB_USER", "DB_PASSWORD", "DB_URL", "TLS_KEY"):
            self.assertRegex(admin, r"(?m)^%s\s+1\s+\*{8}$" % name)
        self.assertNotIn("hunter2", admin)
        self.assertNotIn("PRIVATE KEY", admin)
        self.assertRegex(admin, r"viewer\s+read.*env=prod path=/backend/\*\*")

        # 3: the pipeline step. deploy.sh saw the expanded reference; the PEM came through eval byte for byte.
        pipeline = out[self.block_with("--format=dotenv-export")]
        self.assertIn("deploying as payments to db:5432/payments\n", pipeline)
        self.assertIn("TF_VAR_TLS_KEY is server.key, byte for byte\n", pipeline)
        self.assertNotIn("hunter2", pipeline + err[self.block_with("--format=dotenv-export")])

        # Sign in as a person: the personal access token reads what the user's membership allows.
        person = out[self.block_with("coffer login --user dana@")]
        self.assertTrue(person.endswith("payments\n"), person)
        self.assertNotIn("coffer_pat_", person)

        # The identity may not read /frontend: 403 naming the place.
        n = self.block_with("--path=/frontend")
        self.assertEqual(out[n], "refused\n")
        self.assertRegex(err[n], r"not allowed to read in prod:/frontend \(HTTP 403")

        # Expiry: exit 3, and the secret is listed.
        n = self.block_with("expiring --within 14d --fail")
        self.assertIn("exit status 3\n", out[n])
        self.assertRegex(out[n], r'secret "ARM_CLIENT_SECRET" in Payments API/prod:/backend expires at')

        # History and rollback: two versions listed, version 1's value back.
        n = self.block_with("secrets rollback")
        self.assertRegex(out[n], r"(?m)^2\s+\S+Z\s+\*{8}$")
        self.assertRegex(out[n], r"(?m)^1\s+\S+Z\s+\*{8}$")
        self.assertIn("rolled back DB_PASSWORD to version 1 (now version 3)", out[n])
        self.assertTrue(out[n].endswith("\nhunter2\n"), out[n])

        # The API: Infisical's shape, references expanded.
        n = self.block_with("/api/v3/secrets/raw")
        answer = json.loads(out[n])
        values = {s["secretKey"]: s["secretValue"] for s in answer["secrets"]}
        self.assertEqual(values["DB_URL"], "postgres://payments:hunter2@db:5432/payments")
        self.assertEqual(values["DB_PASSWORD"], "hunter2")
        keys = glob.glob(os.path.join(self.tmp, "tmp.*", "server.key"))
        self.assertEqual(len(keys), 1, "the tour's scratch directory")
        with open(keys[0]) as f:
            self.assertEqual(values["TLS_KEY"], f.read())
        self.assertEqual(values["ARM_CLIENT_SECRET"], "the-entra-id-client-secret")
        self.assertEqual(values["STRIPE_KEY"], "sk_live_from_alice")

        # A production change needs approval: held, shown without its value, self-approval refused, approved,
        # merged, then readable.
        n = self.block_with("coffer approvals merge")
        self.assertIn("needs approval (approval policy 'prod-changes', 1 approval)", out[n])
        self.assertRegex(out[n], r"\+ STRIPE_KEY \(create, value; version 0, now 0\)")
        self.assertIn("refused: the author cannot approve\n", out[n])
        self.assertIn("self-approval", err[n])
        self.assertIn("bob@example.com approved: rotation ticket 42", out[n])
        self.assertRegex(out[n], r"change request \S+: merged")
        self.assertTrue(out[n].endswith("\nsk_live_from_alice\n"), out[n])
        self.assertEqual(out[n].count("sk_live_from_alice"), 1, "the value shows only when read")

    def test_a_failing_command_stops_the_tour_and_names_its_line(self):
        """The drift check itself: a block whose command fails is reported with its README line."""
        saved = self.blocks
        try:
            self.blocks = [(9990, ["echo fine", "coffer secrets list --env prod --projectId nope", "echo never"])]
            self.token = "not-the-admin-token"
            with self.assertRaises(AssertionError) as caught:
                self.run_tour()
            self.assertIn("README.md line 9991: coffer secrets list", str(caught.exception))
            self.assertIn("HTTP 401", str(caught.exception))
            self.assertNotIn("never", str(caught.exception).split("stdout:")[1])
        finally:
            self.blocks = saved

    def test_parser_finds_only_marked_blocks(self):
        text = "```sh\nnot me\n```\n<!-- tour -->\n```sh\na\nb\n```\ntext\n```sh\nnor me\n```\n"
        self.assertEqual(tour_blocks(text), [(6, ["a", "b"])])


class MakeRun(unittest.TestCase):
    """`make -n run` shows the server command the Makefile would run."""

    def command(self, *args, env=None):
        e = harness.base_env(env)
        e.pop("ADDR", None)
        e.pop("DATA_DIR", None)
        proc = subprocess.run(["make", "-n", "-C", harness.REPO, "run"] + list(args), env=e,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = [l for l in proc.stdout.splitlines() if "coffer server" in l]
        self.assertEqual(len(lines), 1, proc.stdout)
        return lines[0]

    def test_addr_and_data_dir_become_flags(self):
        line = self.command("ADDR=127.0.0.1:9000", "DATA_DIR=/tmp/coffer data")
        self.assertIn("--addr '127.0.0.1:9000'", line)
        self.assertIn("--data-dir '/tmp/coffer data'", line)

    def test_without_them_the_environment_and_the_server_defaults_apply(self):
        for env in (None, {"COFFER_ADDR": "127.0.0.1:9001", "COFFER_DATA_DIR": "/tmp/elsewhere"}):
            line = self.command(env=env)
            self.assertNotIn("--addr", line)
            self.assertNotIn("--data-dir", line)
        # ...and the server's own default is the README's.
        rc, out, _ = harness.run(["server", "--help"])
        self.assertEqual(rc, 0)
        self.assertIn("default 127.0.0.1:8080", " ".join(out.split()))  # the help wraps its lines


if __name__ == "__main__":
    unittest.main()
