"""`coffer k8s-operator` (docs/kubernetes.md) against tests/fakes/kubernetes.py and a real Coffer server.

Checked:
- Infisical's documented InfisicalSecret example (kubernetesAuth, syncConfig, labels and annotations passed on,
  template with includeAllSecrets), created with kubectl, synced unchanged with hostAPI pointing at Coffer: the
  TokenRequest the operator sent, the Secret's data, labels, annotations and status.conditions; kubectl reads
  the objects back; the deploy/k8s manifests are accepted by kubectl;
- a change in Coffer reaches the Secret at the next resync (the test clock moves the operator's time);
- universalAuth with creationPolicy Owner: the ownerReference names the InfisicalSecret's uid;
- wrong credentials: status.conditions False naming the refusal, no credential in it or in the operator's log;
- auto-reload: only the annotated Deployment that uses the Secret gets its pod template annotation patched;
- list then watch from the list's resourceVersion, bookmarks moving it forward;
- 410 (the watch's resourceVersion compacted): the operator lists again and keeps syncing;
- 409 (a writer changed the Secret between the operator's read and write): read again, write again;
- two replicas: one leader writes, the other none; after the leader is killed the other takes the Lease over;
- bad resources (no authentication, an unknown creationPolicy, an unsupported template, an unsupported auth
  method, a bad resyncInterval) reported in status.conditions, the operator still running;
- usage errors: exit 2 naming the option; no cluster configuration: exit 1 naming the variables.

Does not depend on the storage backend: skipped on PostgreSQL.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from test_identities import IdentityHelpers

FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes")
import sys  # noqa: E402  (the stand-ins are modules of tests/fakes)

sys.path.insert(0, FAKES)
import kubernetes as fake_k8s  # noqa: E402

OP_TOKEN = "operator-token-a1"
OP_TOKEN_A = "operator-token-a2"
OP_TOKEN_B = "operator-token-b2"
REVIEWER = "reviewer-token-c3"
GROUP = "/apis/secrets.infisical.com/v1alpha1"
KUBECTL = shutil.which("kubectl")

# Infisical's documented example (docs: integrations/platforms/kubernetes/infisical-secret-crd), with only its
# placeholders filled in.
EXAMPLE = """apiVersion: secrets.infisical.com/v1alpha1
kind: InfisicalSecret
metadata:
  name: infisicalsecret-sample
  labels:
    label-to-be-passed-to-managed-secret: sample-value
  annotations:
    example.com/annotation-to-be-passed-to-managed-secret: "sample-value"
spec:
  hostAPI: {host_api}
  syncConfig:
    resyncInterval: 10s
    instantUpdates: false

  authentication:
    kubernetesAuth:
      identityId: {identity_id}
      serviceAccountRef:
        name: app
        namespace: default

      secretsScope:
        projectSlug: {project_slug}
        envSlug: dev # "dev", "staging", "prod", etc..
        secretsPath: "/" # Root is "/"
        recursive: true # Whether or not to use recursive mode

  managedKubeSecretReferences:
    - secretName: managed-secret
      secretNamespace: default
      creationPolicy: "Orphan"
      template:
        includeAllSecrets: true
        data:
          NEW_KEY_NAME: "{{{{ .KEY.SecretPath }}}} {{{{ .KEY.Value }}}}"
          KEY_WITH_BINARY_VALUE: "{{{{ .KEY.SecretPath }}}} {{{{ .KEY.Value }}}}"
"""


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(data):
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


class Operator:
    """One `coffer k8s-operator` process with its own clock file."""

    def __init__(self, url, ca, token, identity, *extra):
        self.dir = tempfile.mkdtemp(prefix="coffer-k8sop-")
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(token + "\n")
        self.clock = harness.clock_file()
        self.offset = 0
        self.log = open(os.path.join(self.dir, "log"), "w+")
        args = [harness.COFFER_BIN, "k8s-operator", "--kube-server", url, "--kube-token-file", self.token_file,
                "--kube-ca-file", ca, "--retry-period", "1s", "--lease-duration", "3s", "--lease-namespace", "coffer-system",
                "--id", identity] + list(extra)
        env = harness.base_env({"COFFER_TEST_CLOCK_FILE": self.clock})
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def advance(self, seconds):
        """Moves the operator's clock on a test build. A release build's clock cannot move: a short wait is
        slept, a longer one skips the rest of the test (the sanitizer build, a test build, runs it)."""
        if not harness.test_build():
            if seconds > 4:
                raise unittest.SkipTest(harness.NOT_A_TEST_BUILD)
            time.sleep(seconds)
            return
        self.offset += seconds
        harness.write_clock_file(self.clock, self.offset)

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out = self.output()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        report = harness.sanitizer_report(out)
        if report:
            raise AssertionError("sanitizer report in the operator's output:\n" + report)
        return self.proc.returncode, out


@unittest.skipIf(harness.BACKEND == "postgres", "the operator does not depend on the storage backend")
class K8sOperator(IdentityHelpers, harness.ServerTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tls_dir = tempfile.mkdtemp(prefix="coffer-k8s-tls-")
        cls.ca, key = harness.make_cert(cls.tls_dir)
        cls.cluster = fake_k8s.Cluster(tokens=[OP_TOKEN, REVIEWER]).start(cls.ca, key)
        cls.cluster.add_token(OP_TOKEN_A, "system:serviceaccount:coffer-system:replica-a")
        cls.cluster.add_token(OP_TOKEN_B, "system:serviceaccount:coffer-system:replica-b")
        super().setUpClass()
        cls.operator = None
        try:
            cls._seed()
            cls.operator = Operator(cls.cluster.url(), cls.ca, OP_TOKEN, "replica-a")
        except Exception:
            super().tearDownClass()
            cls.cluster.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.operator:
                rc, out = cls.operator.stop()
                if rc != 0:
                    raise AssertionError("operator exited %s:\n%s" % (rc, out[-3000:]))
                for secret in ("value-one", "changed-value", cls.client_secret):
                    if secret in out:
                        raise AssertionError("a secret value is in the operator's log")
        finally:
            try:
                super().tearDownClass()
            finally:
                cls.cluster.stop()
                shutil.rmtree(cls.tls_dir, ignore_errors=True)

    @classmethod
    def _seed(cls):
        t = cls("setUp")
        project = t.create_project()
        cls.project_id, cls.project_slug = project["id"], project["slug"]
        t.set_secret(cls.project_id, "KEY", "value-one")
        t.set_secret(cls.project_id, "OTHER", "other-value")
        t.create_folder(cls.project_id, "dev", "nested")
        t.set_secret(cls.project_id, "DEEP", "deep-value", path="/nested")
        # Kubernetes auth: Coffer reviews the operator's TokenRequest tokens on the fake.
        ident = t.create_identity()
        cls.k8s_identity = ident["id"]
        t.ok("POST", "/api/v1/auth/kubernetes-auth/identities/" + ident["id"],
             body={"kubernetesHost": cls.cluster.url(), "caCert": open(cls.ca).read(), "tokenReviewerJwt": REVIEWER,
                   "allowedNamespaces": "default", "allowedNames": "app"})
        t.add_member(cls.project_id, ident["id"], "viewer")
        m = t.machine(cls.project_id, "viewer", login=False)
        cls.client_id, cls.client_secret = m["clientId"], m["clientSecret"]
        for ns, name in (("default", "app"), ("default", "other")):
            cls.cluster.put_object("", "v1", "serviceaccounts", {"metadata": {"name": name, "namespace": ns}})
        cls.cluster.put_object("", "v1", "secrets", {"metadata": {"name": "ua-creds", "namespace": "team"},
                                                    "data": {"clientId": b64(cls.client_id),
                                                             "clientSecret": b64(cls.client_secret)}})
        cls.cluster.put_object("", "v1", "secrets", {"metadata": {"name": "bad-creds", "namespace": "team"},
                                                    "data": {"clientId": b64(cls.client_id),
                                                             "clientSecret": b64("cs.wrong-secret-123")}})

    def host_api(self):
        return self.server.url + "/api"

    # ---- helpers ----

    def create_is(self, name, namespace, spec, labels=None):
        obj = {"apiVersion": "secrets.infisical.com/v1alpha1", "kind": "InfisicalSecret",
               "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        if labels:
            obj["metadata"]["labels"] = labels
        return self.cluster.put_object("secrets.infisical.com", "v1alpha1", "infisicalsecrets", obj)

    def k8s_spec(self, secret_name, namespace="default", **extra):
        spec = {"hostAPI": self.host_api(), "syncConfig": {"resyncInterval": "10s"},
                "authentication": {"kubernetesAuth": {
                    "identityId": self.k8s_identity, "serviceAccountRef": {"name": "app", "namespace": "default"},
                    "secretsScope": {"projectSlug": self.project_slug, "envSlug": "dev", "secretsPath": "/"}}},
                "managedKubeSecretReferences": [{"secretName": secret_name, "secretNamespace": namespace}]}
        spec.update(extra)
        return spec

    @classmethod
    def restart_operator(cls):
        cls.operator = Operator(cls.cluster.url(), cls.ca, OP_TOKEN, "replica-a")

    def touch_spec(self, namespace, name):
        """Edits the resource's spec (a new generation), which the operator reconciles at once."""
        obj = self.cluster.get("secrets.infisical.com", "v1alpha1", "infisicalsecrets", namespace, name)
        flag = not (obj["spec"].get("syncConfig") or {}).get("instantUpdates", False)
        return self.cluster.patch("secrets.infisical.com", "v1alpha1", "infisicalsecrets", namespace, name,
                                  {"spec": {"syncConfig": {"instantUpdates": flag}}})

    def secret(self, namespace, name):
        return self.cluster.get("", "v1", "secrets", namespace, name)

    def wait_secret(self, namespace, name, predicate=lambda s: True, timeout=10):
        def check():
            s = self.secret(namespace, name)
            return s if s and predicate(s) else None
        return wait_for(check, timeout, "secret %s/%s" % (namespace, name))

    def conditions(self, namespace, name):
        obj = self.cluster.get("secrets.infisical.com", "v1alpha1", "infisicalsecrets", namespace, name)
        return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}

    def wait_condition(self, namespace, name, ctype, status, timeout=10):
        return wait_for(lambda: (self.conditions(namespace, name).get(ctype) or {}).get("status") == status
                        and self.conditions(namespace, name)[ctype], timeout,
                        "condition %s=%s on %s/%s" % (ctype, status, namespace, name))

    def kubectl(self, *args, token=OP_TOKEN, check=True):
        cache = tempfile.mkdtemp(prefix="coffer-kubectl-")
        try:
            proc = subprocess.run([KUBECTL, "--server", self.cluster.url(), "--token", token,
                                   "--certificate-authority", self.ca,
                                   "--cache-dir", cache] + list(args), capture_output=True, text=True, timeout=30,
                                  env=dict(os.environ, HOME=cache, KUBECONFIG=os.path.join(cache, "none")))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if check and proc.returncode != 0:
            self.fail("kubectl %s -> %d: %s" % (" ".join(args), proc.returncode, proc.stderr))
        return proc

    # ---- tests ----

    @unittest.skipUnless(KUBECTL, "kubectl is not installed (scripts/deps.sh installs kubernetes-client)")
    def test_documented_example_with_kubectl(self):
        # The manifests of deploy/k8s are well-formed for kubectl (created for real on the fake).
        deploy = os.path.join(harness.REPO, "deploy", "k8s")
        for name in ("namespace.yaml", "crd.yaml", "rbac.yaml", "deployment.yaml"):
            self.kubectl("create", "--validate=false", "-f", os.path.join(deploy, name))
        crd = self.cluster.get("apiextensions.k8s.io", "v1", "customresourcedefinitions", None,
                               "infisicalsecrets.secrets.infisical.com")
        self.assertEqual(crd["spec"]["names"]["kind"], "InfisicalSecret")
        dep = self.cluster.get("apps", "v1", "deployments", "coffer-system", "coffer-k8s-operator")
        self.assertEqual(dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"], True)

        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(EXAMPLE.format(host_api=self.host_api(), identity_id=self.k8s_identity,
                                   project_slug=self.project_slug))
        try:
            self.kubectl("create", "--validate=false", "-n", "default", "-f", f.name)
        finally:
            os.unlink(f.name)
        s = self.wait_secret("default", "managed-secret")
        data = unb64(s["data"])
        self.assertEqual(data, {"KEY": "value-one", "OTHER": "other-value", "DEEP": "deep-value",
                                "NEW_KEY_NAME": "/ value-one", "KEY_WITH_BINARY_VALUE": "/ value-one"})
        self.assertEqual(s["metadata"]["labels"]["label-to-be-passed-to-managed-secret"], "sample-value")
        self.assertEqual(s["metadata"]["labels"]["app.kubernetes.io/managed-by"], "coffer-k8s-operator")
        self.assertEqual(s["metadata"]["annotations"]["example.com/annotation-to-be-passed-to-managed-secret"],
                         "sample-value")
        self.assertRegex(s["metadata"]["annotations"]["secrets.infisical.com/version"], "^[0-9a-f]{32}$")
        self.assertNotIn("ownerReferences", s["metadata"])  # Orphan
        self.assertEqual(s["type"], "Opaque")
        # The operator asked the API server for a token of serviceAccountRef (TokenRequest).
        reqs = self.cluster.requests_matching("POST", "/api/v1/namespaces/default/serviceaccounts/app/token")
        self.assertTrue(reqs)
        self.assertEqual(reqs[0]["principal"], "system:serviceaccount:coffer:operator")
        self.assertEqual(json.loads(reqs[0]["body"]), {"apiVersion": "authentication.k8s.io/v1",
                                                       "kind": "TokenRequest",
                                                       "spec": {"audiences": [], "expirationSeconds": 600}})
        cond = self.wait_condition("default", "infisicalsecret-sample", "secrets.infisical.com/ReadyToSyncSecrets",
                                   "True")
        self.assertEqual((cond["reason"], cond["observedGeneration"]), ("OK", 1))
        # Conditions are written with a merge patch of the status subresource.
        status_writes = self.cluster.requests_matching(
            "PATCH", GROUP + "/namespaces/default/infisicalsecrets/infisicalsecret-sample/status")
        self.assertTrue(status_writes)
        self.assertEqual(status_writes[0]["content_type"], "application/merge-patch+json")
        self.assertEqual(list(json.loads(status_writes[0]["body"])), ["status"])
        self.assertEqual(self.conditions("default", "infisicalsecret-sample")[
            "secrets.infisical.com/LoadedInfisicalToken"]["status"], "True")
        # kubectl reads back what the operator wrote.
        out = json.loads(self.kubectl("get", "secret", "managed-secret", "-n", "default", "-o", "json").stdout)
        self.assertEqual(base64.b64decode(out["data"]["KEY"]).decode(), "value-one")
        out = json.loads(self.kubectl("get", "infisicalsecrets.secrets.infisical.com", "infisicalsecret-sample",
                                      "-n", "default", "-o", "json").stdout)
        self.assertEqual(out["status"]["conditions"][1]["status"], "True")

    def test_change_reaches_secret_at_resync(self):
        self.create_is("resync", "sync", self.k8s_spec("resynced", namespace="sync"))
        self.wait_secret("sync", "resynced")
        writes_before = len(self.cluster.requests_matching("PUT", "/api/v1/namespaces/sync/secrets/resynced"))
        self.update_secret(self.project_id, "OTHER", secretValue="changed-value")
        try:
            # Nothing changes in the cluster: only the resync interval (10s, moved on the operator's clock)
            # brings the change.
            start = time.monotonic()
            self.operator.advance(10)
            self.wait_secret("sync", "resynced", lambda s: unb64(s["data"])["OTHER"] == "changed-value")
            print("\n  change reached the Secret %.2f s after the resync interval passed"
                  % (time.monotonic() - start))
            self.assertEqual(len(self.cluster.requests_matching("PUT", "/api/v1/namespaces/sync/secrets/resynced")),
                             writes_before + 1)
        finally:
            self.update_secret(self.project_id, "OTHER", secretValue="other-value")

    def test_universal_auth_owner_and_wrong_credentials(self):
        spec = self.k8s_spec("owned", namespace="team")
        spec["authentication"] = {"universalAuth": {
            "credentialsRef": {"secretName": "ua-creds", "secretNamespace": "team"},
            "secretsScope": {"projectSlug": self.project_slug, "envSlug": "dev", "secretsPath": "/nested"}}}
        spec["managedKubeSecretReferences"][0]["creationPolicy"] = "Owner"
        owner = self.create_is("ua", "team", spec)
        s = self.wait_secret("team", "owned")
        self.assertEqual(unb64(s["data"]), {"DEEP": "deep-value"})
        self.assertEqual(s["metadata"]["ownerReferences"], [{
            "apiVersion": "secrets.infisical.com/v1alpha1", "kind": "InfisicalSecret", "name": "ua",
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}])

        spec = self.k8s_spec("never", namespace="team")
        spec["authentication"] = {"universalAuth": {
            "credentialsRef": {"secretName": "bad-creds", "secretNamespace": "team"},
            "secretsScope": {"projectSlug": self.project_slug, "envSlug": "dev", "secretsPath": "/"}}}
        self.create_is("wrong", "team", spec)
        cond = self.wait_condition("team", "wrong", "secrets.infisical.com/ReadyToSyncSecrets", "False")
        self.assertEqual(cond["reason"], "LoginFailed")
        self.assertIn("coffer login (universalAuth) refused", cond["message"])
        token_cond = self.conditions("team", "wrong")["secrets.infisical.com/LoadedInfisicalToken"]
        self.assertEqual(token_cond["status"], "False")
        self.assertNotIn("wrong-secret", json.dumps(self.conditions("team", "wrong")))
        self.assertIsNone(self.secret("team", "never"))

    def test_auto_reload_restarts_only_annotated_users(self):
        def deployment(name, annotated, uses):
            container = {"name": "app", "image": "app:1"}
            if uses:
                container["env"] = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "reloaded",
                                                                                  "key": "KEY"}}}]
            meta = {"name": name, "namespace": "web"}
            if annotated:
                meta["annotations"] = {"secrets.infisical.com/auto-reload": "true"}
            return self.cluster.put_object("apps", "v1", "deployments", {
                "metadata": meta, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                                           "template": {"metadata": {"labels": {"app": name}},
                                                        "spec": {"containers": [container]}}}})
        deployment("uses-annotated", True, True)
        deployment("uses-plain", False, True)
        deployment("annotated-unrelated", True, False)
        self.create_is("reload", "web", self.k8s_spec("reloaded", namespace="web"))
        self.wait_secret("web", "reloaded")
        self.assertEqual(self.cluster.requests_matching("PATCH", "/apis/apps/v1/"), [])  # a creation restarts none
        self.update_secret(self.project_id, "KEY", secretValue="value-two")
        try:
            self.touch_spec("web", "reload")
            self.wait_secret("web", "reloaded", lambda s: unb64(s["data"])["KEY"] == "value-two")
            patched = wait_for(lambda: self.cluster.requests_matching("PATCH", "/apis/apps/v1/"), 5, "a restart")
            self.assertEqual([(r["path"], r["content_type"]) for r in patched],
                             [("/apis/apps/v1/namespaces/web/deployments/uses-annotated",
                               "application/strategic-merge-patch+json")])
            d = self.cluster.get("apps", "v1", "deployments", "web", "uses-annotated")
            self.assertRegex(d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
                             r"^\d{4}-\d\d-\d\dT")
            self.assertEqual(d["metadata"]["generation"], 2)
            for name in ("uses-plain", "annotated-unrelated"):
                self.assertEqual(self.cluster.get("apps", "v1", "deployments", "web", name)["metadata"]["generation"],
                                 1)
        finally:
            self.update_secret(self.project_id, "KEY", secretValue="value-one")

    def test_gone_relists_and_conflict_retries(self):
        self.create_is("gone", "ops", self.k8s_spec("gone-secret", namespace="ops"))
        self.wait_secret("ops", "gone-secret")
        lists_before = len([r for r in self.cluster.requests_matching("GET", GROUP + "/infisicalsecrets")
                            if "watch" not in r["query"]])
        # Compacted while the operator's watch is open (between two watches there is none to end, and a new
        # watch from the latest resourceVersion is valid after a compaction, as on a real API server).
        wait_for(lambda: self.cluster.open_watches("infisicalsecrets"), 10, "an open watch")
        self.cluster.compact()  # the open watch gets ERROR 410
        wait_for(lambda: len([r for r in self.cluster.requests_matching("GET", GROUP + "/infisicalsecrets")
                              if "watch" not in r["query"]]) > lists_before, 10, "a new list after 410")
        self.assertIn("is gone (410): listing again", self.operator.output())
        # Still watching: a new resource is synced.
        self.create_is("after-gone", "ops", self.k8s_spec("after-gone-secret", namespace="ops"))
        self.wait_secret("ops", "after-gone-secret")

        # 409: another writer changes the Secret between the operator's read and its write.
        self.cluster.touch_before_next_put("secrets", "ops", "gone-secret")
        self.update_secret(self.project_id, "OTHER", secretValue="after-conflict")
        try:
            self.touch_spec("ops", "gone")
            self.wait_secret("ops", "gone-secret", lambda s: unb64(s["data"])["OTHER"] == "after-conflict")
            puts = [r["status"] for r in self.cluster.requests_matching("PUT", "/api/v1/namespaces/ops/secrets/"
                                                                        "gone-secret")]
            self.assertEqual(puts[-2:], [409, 200])
            self.assertIn("conflict, reading it again", self.operator.output())
        finally:
            self.update_secret(self.project_id, "OTHER", secretValue="other-value")

    def test_watch_from_list_and_bookmarks(self):
        # Objects of other kinds move the cluster's resourceVersion; the watch's bookmarks carry it to the
        # operator, whose next watch starts there rather than at its last InfisicalSecret event.
        self.cluster.put_object("", "v1", "secrets", {"metadata": {"name": "unrelated", "namespace": "misc"}})
        rv = self.cluster.rv

        def watches():
            return [r["query"] for r in self.cluster.requests_matching("GET", GROUP + "/infisicalsecrets")
                    if r["query"].get("watch")]
        wait_for(lambda: any(int(q.get("resourceVersion") or 0) >= rv for q in watches()), 10,
                 "a watch from the bookmark's resourceVersion")
        for q in watches():
            self.assertEqual((q["watch"], q["allowWatchBookmarks"], q["timeoutSeconds"]), ("1", "true", "1"))
            self.assertTrue(q["resourceVersion"].isdigit(), q)

    def test_backoff_on_errors(self):
        mark = len(self.operator.output())
        self.cluster.fail_next("GET", GROUP + "/infisicalsecrets", 500)
        self.cluster.fail_next("GET", GROUP + "/infisicalsecrets", 429, retry_after=1)
        wait_for(lambda: "HTTP 429" in self.operator.output()[mark:], 10, "the throttled request")
        out = self.operator.output()[mark:]
        # Exponential backoff (1 s, then 2 s), except that a Retry-After wins.
        self.assertRegex(out, r"HTTP 500\)?: injected by the test \(next attempt in 1000 ms\)")
        self.assertRegex(out, r"HTTP 429\)?: injected by the test \(next attempt in 1000 ms\)")
        self.create_is("after-errors", "ops", self.k8s_spec("after-errors-secret", namespace="ops"))
        self.wait_secret("ops", "after-errors-secret")

    def test_bad_resources_reported_in_status(self):
        cases = [
            ("no-auth", {"hostAPI": self.host_api(), "authentication": {},
                         "managedKubeSecretReferences": [{"secretName": "x", "secretNamespace": "bad"}]},
             "InvalidSpec", "spec.authentication needs exactly one of kubernetesAuth and universalAuth"),
            ("policy", self.k8s_spec("x", namespace="bad", managedKubeSecretReferences=[
                {"secretName": "x", "secretNamespace": "bad", "creationPolicy": "Sometimes"}]),
             "InvalidSpec", "creationPolicy 'Sometimes' is not Orphan or Owner"),
            ("owner-elsewhere", self.k8s_spec("x", namespace="bad", managedKubeSecretReferences=[
                {"secretName": "x", "secretNamespace": "default", "creationPolicy": "Owner"}]),
             "InvalidSpec", "creationPolicy Owner needs secretNamespace 'bad'"),
            ("template", self.k8s_spec("x", namespace="bad", managedKubeSecretReferences=[
                {"secretName": "x", "secretNamespace": "bad", "template": {"data": {"A": "{{ .KEY.Value | upper }}"}}}]),
             "TemplateFailed", "template 'A': only {{ .KEY.Value }} and {{ .KEY.SecretPath }} are supported"),
            ("missing-key", self.k8s_spec("x", namespace="bad", managedKubeSecretReferences=[
                {"secretName": "x", "secretNamespace": "bad", "template": {"data": {"A": "{{ .NOPE.Value }}"}}}]),
             "TemplateFailed", "template 'A': no secret 'NOPE' in the scope"),
            ("aws", {"hostAPI": self.host_api(), "authentication": {"awsIamAuth": {"identityId": "x"}},
                     "managedKubeSecretReferences": [{"secretName": "x", "secretNamespace": "bad"}]},
             "InvalidSpec", "spec.authentication.awsIamAuth is not supported"),
            ("ca-ref", self.k8s_spec("x", namespace="bad", tls={"caRef": {
                "secretName": "ca", "secretNamespace": "bad", "key": "ca.crt"}}),
             "InvalidSpec", "spec.tls.caRef is not supported: give the operator Coffer's CA with --coffer-ca-file"),
            ("interval", self.k8s_spec("x", namespace="bad", syncConfig={"resyncInterval": "soon"}),
             "InvalidSpec", "spec.syncConfig.resyncInterval 'soon' is not a duration"),
            ("no-sa", self.k8s_spec("x", namespace="bad", authentication={"kubernetesAuth": {
                "identityId": self.k8s_identity, "serviceAccountRef": {"name": "ghost", "namespace": "default"},
                "secretsScope": {"projectSlug": self.project_slug, "envSlug": "dev", "secretsPath": "/"}}}),
             "LoginFailed", "token request for service account 'default/ghost': HTTP 404"),
            ("other-sa", self.k8s_spec("x", namespace="bad", authentication={"kubernetesAuth": {
                "identityId": self.k8s_identity, "serviceAccountRef": {"name": "other", "namespace": "default"},
                "secretsScope": {"projectSlug": self.project_slug, "envSlug": "dev", "secretsPath": "/"}}}),
             "LoginFailed", "coffer login (kubernetesAuth) refused"),
            ("no-project", self.k8s_spec("x", namespace="bad", authentication={"kubernetesAuth": {
                "identityId": self.k8s_identity, "serviceAccountRef": {"name": "app", "namespace": "default"},
                "secretsScope": {"projectSlug": "no-such-project", "envSlug": "dev", "secretsPath": "/"}}}),
             "FetchFailed", "reading secrets of 'no-such-project'"),
        ]
        for name, spec, _, _ in cases:
            self.create_is(name, "bad", spec)
        for name, _, reason, message in cases:
            with self.subTest(name):
                cond = self.wait_condition("bad", name, "secrets.infisical.com/ReadyToSyncSecrets", "False")
                self.assertEqual(cond["reason"], reason)
                self.assertIn(message, cond["message"])
        self.assertIsNone(self.secret("bad", "x"))
        self.assertIsNone(self.operator.proc.poll())

    def test_two_replicas_one_leader(self):
        # The class's operator watches every namespace: it stops for this test, so that only the two replicas
        # write.
        rc, out = type(self).operator.stop()
        type(self).operator = None
        self.assertEqual(rc, 0, out)
        self.addCleanup(self.restart_operator)
        a = Operator(self.cluster.url(), self.ca, OP_TOKEN_A, "ha-a", "--namespace", "ha", "--lease-name", "ha-lease")
        b = None
        try:
            lease = wait_for(lambda: self.cluster.get("coordination.k8s.io", "v1", "leases", "coffer-system",
                                                      "ha-lease"), 10, "the lease")
            self.assertEqual(lease["spec"]["holderIdentity"], "ha-a")
            b = Operator(self.cluster.url(), self.ca, OP_TOKEN_B, "ha-b", "--namespace", "ha", "--lease-name", "ha-lease")
            wait_for(lambda: self.cluster.requests_matching("GET", "/apis/coordination.k8s.io/v1/namespaces/"
                                                            "coffer-system/leases/ha-lease") and
                     any(r["principal"].endswith("replica-b") for r in self.cluster.requests_matching(
                         "GET", "/apis/coordination.k8s.io/v1/namespaces/coffer-system/leases/ha-lease")),
                     10, "replica b's election round")
            def b_rounds():
                return len([r for r in self.cluster.requests_matching(
                    "GET", "/apis/coordination.k8s.io/v1/namespaces/coffer-system/leases/ha-lease")
                    if r["principal"].endswith("replica-b")])
            self.create_is("ha", "ha", self.k8s_spec("ha-secret", namespace="ha"))
            self.wait_secret("ha", "ha-secret")
            rounds = b_rounds()
            wait_for(lambda: b_rounds() >= rounds + 2, 10, "two more rounds of replica b")
            writers = {r["principal"] for r in self.cluster.requests if r["method"] in ("POST", "PUT", "PATCH")
                       and r["path"].startswith(("/api/v1/namespaces/ha/", GROUP + "/namespaces/ha/"))}
            self.assertEqual(writers, {"system:serviceaccount:coffer-system:replica-a"})
            self.assertEqual(self.cluster.get("coordination.k8s.io", "v1", "leases", "coffer-system",
                                              "ha-lease")["spec"]["holderIdentity"], "ha-a")

            # The leader dies without releasing the Lease: b takes it over once it has seen it unchanged for
            # leaseDurationSeconds (3 s, on b's clock).
            a.proc.kill()
            a.proc.wait()
            b.advance(4)
            wait_for(lambda: self.cluster.get("coordination.k8s.io", "v1", "leases", "coffer-system",
                                              "ha-lease")["spec"]["holderIdentity"] == "ha-b", 10, "the takeover")
            lease = self.cluster.get("coordination.k8s.io", "v1", "leases", "coffer-system", "ha-lease")
            self.assertEqual(lease["spec"]["leaseTransitions"], 1)
            # The new leader starts with a list and reconciles everything: the change made meanwhile arrives.
            self.update_secret(self.project_id, "OTHER", secretValue="b-writes")
            self.touch_spec("ha", "ha")
            self.wait_secret("ha", "ha-secret", lambda s: unb64(s["data"])["OTHER"] == "b-writes")
            puts = self.cluster.requests_matching("PUT", "/api/v1/namespaces/ha/secrets/ha-secret")
            self.assertEqual(puts[-1]["principal"], "system:serviceaccount:coffer-system:replica-b")
            rc, out = b.stop()
            b = None
            self.assertEqual(rc, 0, out)
            self.assertIn("acquired lease 'coffer-system/ha-lease' as 'ha-b'", out)
            # A clean stop gives the Lease up.
            self.assertEqual(self.cluster.get("coordination.k8s.io", "v1", "leases", "coffer-system",
                                              "ha-lease")["spec"]["holderIdentity"], "")
        finally:
            self.update_secret(self.project_id, "OTHER", secretValue="other-value")
            a.stop()
            if b:
                b.stop()

    def test_usage_errors(self):
        cases = [
            (["k8s-operator", "--bogus"], 2, "unknown option '--bogus'"),
            (["k8s-operator", "--retry-period", "0s"], 2, "--retry-period '0s' is not a duration of 1s to 1h"),
            (["k8s-operator", "--lease-duration", "1s"], 2, "--lease-duration must be longer than --retry-period"),
            (["k8s-operator", "--namespace", "Bad_NS"], 2, "take Kubernetes names"),
            (["k8s-operator", "extra"], 2, "unexpected argument 'extra'"),
            (["k8s-operator"], 1, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"),
            (["k8s-operator", "--kube-server", "http://k8s.example:80"], 1, "must be an https URL"),
            (["k8s-operator", "--kube-server", "https://127.0.0.1:1", "--kube-token-file", "/nonexistent/t"], 1,
             "kubernetes token: cannot open '/nonexistent/t'"),
        ]
        for args, code, message in cases:
            with self.subTest(args=args):
                rc, _, err = harness.run(args, env=harness.base_env({"KUBERNETES_SERVICE_HOST": None}))
                self.assertEqual(rc, code, err)
                self.assertIn(message, err)


if __name__ == "__main__":
    unittest.main()
