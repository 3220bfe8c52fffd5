"""The Debian package (docs/operations.md "Debian package"): `dpkg-buildpackage -b` over debian/ builds a .deb of the
coffer under test (COFFER_PREBUILT, so the tree is not compiled a second time), and dpkg installs it into a scratch
root (`--root`, maintainer scripts run without a chroot under DPKG_ROOT):

- the binary, its man pages and bash/zsh completions, the two systemd units with /usr/bin/coffer, the docs;
- the `coffer` system user and group created in the scratch root's user database, /var/lib/coffer mode 0700
  owned by it; the host's own user database and systemd state untouched;
- the package's dependencies found by dh_shlibdeps (libsodium, libmicrohttpd, ...), and the installed binary runs.

The suite does not depend on the storage backend: it skips on PostgreSQL.
"""

import os
import shutil
import stat
import subprocess
import tempfile
import unittest

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@unittest.skipIf(harness.BACKEND == "postgres", "the package does not depend on the storage backend")
class DebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [t for t in ("dpkg-buildpackage", "dh", "dpkg", "useradd") if not shutil.which(t)]
        if missing:
            raise unittest.SkipTest("%s not installed (scripts/deps.sh installs debhelper and dpkg-dev)"
                                    % ", ".join(missing))
        cls.tmp = tempfile.mkdtemp(prefix="coffer-package-")
        src = os.path.join(cls.tmp, "coffer")
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        for name in files.decode().split("\0"):
            if name and os.path.isfile(os.path.join(ROOT, name)):
                os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
                shutil.copy2(os.path.join(ROOT, name), os.path.join(src, name))
        env = dict(os.environ, COFFER_PREBUILT=os.path.dirname(os.path.abspath(harness.COFFER_BIN)))
        r = subprocess.run(["dpkg-buildpackage", "-b", "-uc", "-us"], cwd=src, env=env, capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError("dpkg-buildpackage failed:\n" + (r.stdout + r.stderr)[-4000:])
        debs = [n for n in os.listdir(cls.tmp) if n.startswith("coffer_") and n.endswith(".deb")]
        assert len(debs) == 1, os.listdir(cls.tmp)
        cls.deb = os.path.join(cls.tmp, debs[0])
        cls.root = os.path.join(cls.tmp, "root")
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"):
            os.makedirs(os.path.join(cls.root, d))
        open(os.path.join(cls.root, "var/lib/dpkg/status"), "w").close()
        # a user database with root only, as a fresh system has
        for name, line, mode in (("passwd", "root:x:0:0:root:/root:/bin/bash\n", 0o644),
                                 ("group", "root:x:0:\n", 0o644), ("shadow", "root:*:19000:0:99999:7:::\n", 0o640),
                                 ("gshadow", "root:*::\n", 0o640)):
            with open(os.path.join(cls.root, "etc", name), "w") as f:
                f.write(line)
            os.chmod(os.path.join(cls.root, "etc", name), mode)
        if os.path.exists("/etc/login.defs"):
            shutil.copy("/etc/login.defs", os.path.join(cls.root, "etc"))
        with open("/etc/passwd") as f:
            cls.host_passwd = f.read()
        r = subprocess.run(["dpkg", "--root=" + cls.root, "--force-script-chrootless", "--force-depends",
                            "--force-not-root", "--log=/dev/null", "-i", cls.deb],
                           capture_output=True, text=True, timeout=300)
        cls.install = r

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def test_installed_files(self):
        self.assertEqual(self.install.returncode, 0, self.install.stdout + self.install.stderr)
        binary = self.path("usr/bin/coffer")
        self.assertTrue(os.access(binary, os.X_OK))
        r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("coffer "), r.stdout)
        # `coffer scan` runs the scanner installed under /usr/libexec/coffer
        self.assertTrue(os.access(self.path("usr/libexec/coffer/coffer-scan"), os.X_OK))
        with tempfile.TemporaryDirectory() as empty:
            r = subprocess.run([binary, "scan", empty], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 findings", r.stdout + r.stderr)
        for f in ("usr/share/man/man1/coffer.1.gz", "usr/share/man/man1/coffer-run.1.gz",
                  "usr/share/bash-completion/completions/coffer", "usr/share/zsh/vendor-completions/_coffer",
                  "usr/share/doc/coffer/README.md.gz", "usr/share/doc/coffer/operations.md.gz"):
            self.assertTrue(os.path.isfile(self.path(f)), f)
        for unit in ("coffer.service", "coffer-agent.service"):
            with open(self.path("lib/systemd/system", unit)) as f:
                text = f.read()
            self.assertIn("ExecStart=/usr/bin/coffer ", text, unit)
            self.assertNotIn("/usr/local/", text, unit)
            self.assertIn("Type=notify", text)

    def test_user_and_state_directory(self):
        self.assertEqual(self.install.returncode, 0, self.install.stderr)
        with open(self.path("etc/passwd")) as f:
            users = {l.split(":")[0]: l.strip().split(":") for l in f if l.strip()}
        self.assertIn("coffer", users)
        uid, gid, home, shell = int(users["coffer"][2]), int(users["coffer"][3]), users["coffer"][5], \
            users["coffer"][6]
        self.assertLess(uid, 1000, "a system user")
        self.assertEqual((home, shell), ("/var/lib/coffer", "/usr/sbin/nologin"))
        st = os.stat(self.path("var/lib/coffer"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        self.assertEqual((st.st_uid, st.st_gid), (uid, gid))
        # the host was not touched
        with open("/etc/passwd") as f:
            self.assertEqual(f.read(), self.host_passwd)
        self.assertFalse(os.path.exists("/etc/systemd/system/multi-user.target.wants/coffer.service"))

    def test_dependencies(self):
        r = subprocess.run(["dpkg-deb", "-f", self.deb, "Depends"], capture_output=True, text=True, check=True)
        # the last four are loaded at their first use (util/dynlib.h), so dpkg-shlibdeps cannot see them:
        # debian/control names them
        for lib in ("libsodium23", "libmicrohttpd12", "libjansson4", "libpq5", "libcurl4", "libmariadb3",
                    "libgpgme11"):
            self.assertIn(lib, r.stdout)
        r = subprocess.run(["dpkg", "--root=" + self.root, "-s", "coffer"], capture_output=True, text=True)
        self.assertIn("Status: install ok installed", r.stdout)


if __name__ == "__main__":
    unittest.main()
