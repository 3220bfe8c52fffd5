"""Single sign-on's groups and application credential (docs/users.md "Groups and roles from the identity
provider", "A certificate instead of a client secret"), against the Entra ID stand-in (tests/fakes/entra_oidc.py):

- --oidc-group-role maps the groups claim to the org role at every sign-in (the highest wins, no mapped group
  gives member, the last active owner stays an owner); --oidc-require-group refuses users in no mapped group;
- the user joins the Coffer groups whose external id the provider names and leaves those it no longer names
  (groups made in Coffer untouched); every change is in the sign-in's audit record;
- on Entra ID's overage the groups come from Microsoft Graph (getMemberGroups with the application's own token),
  through throttling (429 + Retry-After) and with a 503 naming the cause when Graph refuses;
- another provider's group claim by name (--oidc-groups-claim);
- a client certificate instead of a secret: the token requests carry a client assertion the stand-in verifies,
  and a certificate Entra ID does not know is refused with its AADSTS answer."""

import json
import os
import shutil
import subprocess
import tempfile

import harness
from test_sso import CLIENT_ID, TENANT, SSOCase

OWNERS = "0d9e6c1a-1111-4a4a-9b9b-000000000001"
ADMINS = "0d9e6c1a-2222-4a4a-9b9b-000000000002"
DEVS = "0d9e6c1a-3333-4a4a-9b9b-000000000003"
OPS = "0d9e6c1a-4444-4a4a-9b9b-000000000004"


def make_certificate(directory, name):
    """A self-signed RSA certificate and its key in one PEM file (as --oidc-client-certificate takes it); returns
    (path, certificate PEM)."""
    key, cert = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-subj", "/CN=" + name, "-days", "2"], check=True, capture_output=True)
    with open(cert) as f:
        cert_pem = f.read()
    with open(key) as f:
        key_pem = f.read()
    both = os.path.join(directory, name + ".pem")
    with open(both, "w") as f:
        f.write(cert_pem + key_pem)
    return both, cert_pem


class GroupHelpers:
    def set_groups(self, user, groups):
        user["groups"] = groups
        self.fake.call("POST", "/_fake/entra/users", user)

    def signed_in_user(self, user):
        me, _, _ = self.assertSignedIn(self.sign_in(user), user.get("email") or user["login"])
        return me

    def login_records(self, email):
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "sso.login"})["events"]
        return [e for e in events if email in json.dumps(e)]

    def make_group(self, name, external_id):
        gid = harness.unique("grp")
        ext = "'%s'" % external_id if external_id else "NULL"
        harness.sql(self.server.data_dir, "INSERT INTO user_groups (id, name, external_id, created_at, updated_at)"
                    " VALUES ('%s', '%s', %s, 0, 0)" % (gid, name, ext))
        return gid

    def groups_of(self, user_id):
        rows = harness.sql(self.server.data_dir,
                           "SELECT g.name FROM user_group_members m JOIN user_groups g ON g.id = m.group_id"
                           " WHERE m.user_id = '%s'" % user_id)
        return sorted(r[0] for r in rows)


class GroupRoles(GroupHelpers, SSOCase):
    EXTRA_ARGS = ("--oidc-group-role", "%s=owner, %s=admin" % (OWNERS, ADMINS))

    def setUp(self):
        super().setUp()
        # another active owner, so that the users signing in here may lose the role
        self.ok("POST", "/api/v1/users", body={"email": harness.unique("owner") + "@example.com",
                                               "orgRole": "owner"})

    def test_highest_role_wins_and_follows_the_groups(self):
        user = self.add_user(groups=[DEVS, ADMINS, OWNERS])
        self.assertEqual(self.signed_in_user(user)["orgRole"], "owner")
        self.set_groups(user, [ADMINS, DEVS])
        self.assertEqual(self.signed_in_user(user)["orgRole"], "admin")
        self.set_groups(user, [DEVS])
        me = self.signed_in_user(user)
        self.assertEqual(me["orgRole"], "member")
        # a role set by hand lasts until the next sign-in: the provider's groups decide
        self.ok("PATCH", "/api/v1/users/" + me["id"], body={"orgRole": "admin"})
        self.assertEqual(self.signed_in_user(user)["orgRole"], "member")
        texts = [json.dumps(e) for e in self.login_records(user["login"])]
        for change in ("org role member -> owner", "org role owner -> admin", "org role admin -> member"):
            self.assertTrue([t for t in texts if change in t], (change, texts))

    def test_no_group_claim_gives_member(self):
        user = self.add_user()
        self.assertEqual(self.signed_in_user(user)["orgRole"], "member")

    def test_the_last_active_owner_stays_an_owner(self):
        user = self.add_user(groups=[OWNERS])
        me = self.signed_in_user(user)
        self.assertEqual(me["orgRole"], "owner")
        owners = [u for u in self.ok("GET", "/api/v1/users")["users"]
                  if u["orgRole"] == "owner" and u["status"] == "active" and u["id"] != me["id"]]
        for u in owners:
            self.ok("PATCH", "/api/v1/users/" + u["id"], body={"status": "disabled"})
        try:
            self.set_groups(user, [DEVS])
            mark = self.server.stderr_len()
            self.assertEqual(self.signed_in_user(user)["orgRole"], "owner")
            self.assertIn("sso_role_kept", self.server.stderr_since(mark))
        finally:
            for u in owners:
                self.ok("PATCH", "/api/v1/users/" + u["id"], body={"status": "active"})
        self.assertEqual(self.signed_in_user(user)["orgRole"], "member")

    def test_group_membership_follows_the_claim(self):
        ops_id, devs_id = harness.unique("ext-ops"), harness.unique("ext-devs")
        ops = self.make_group(harness.unique("ops"), ops_id)
        devs = self.make_group(harness.unique("devs"), devs_id)
        local = self.make_group(harness.unique("local"), None)
        names = {gid: harness.sql(self.server.data_dir, "SELECT name FROM user_groups WHERE id = '%s'" % gid)[0][0]
                 for gid in (ops, devs, local)}
        user = self.add_user(groups=[ops_id, devs_id, "not-a-coffer-group"])
        me = self.signed_in_user(user)
        self.assertEqual(self.groups_of(me["id"]), sorted([names[ops], names[devs]]))
        # a group made in Coffer is left alone by the sync
        harness.sql(self.server.data_dir, "INSERT INTO user_group_members (group_id, user_id, created_at)"
                    " VALUES ('%s', '%s', 0)" % (local, me["id"]))
        self.set_groups(user, [devs_id])
        self.signed_in_user(user)
        self.assertEqual(self.groups_of(me["id"]), sorted([names[devs], names[local]]))
        texts = [json.dumps(e) for e in self.login_records(user["login"])]
        self.assertTrue([t for t in texts if "joined " in t and names[ops] in t], texts)
        self.assertTrue([t for t in texts if "left " + names[ops] in t], texts)
        # a token without the groups claim changes no membership (the provider may not send it at all)
        self.set_groups(user, [])
        self.signed_in_user(user)
        self.assertEqual(self.groups_of(me["id"]), sorted([names[devs], names[local]]))

    def test_overage_groups_come_from_graph_and_map_roles(self):
        ops_id = harness.unique("ext-ops")
        ops = self.make_group(harness.unique("ops"), ops_id)
        groups = ["g%d" % i for i in range(240)] + [ADMINS, ops_id]
        user = self.add_user(groups=groups)
        me = self.signed_in_user(user)
        self.assertEqual(me["orgRole"], "admin")
        name = harness.sql(self.server.data_dir, "SELECT name FROM user_groups WHERE id = '%s'" % ops)[0][0]
        self.assertEqual(self.groups_of(me["id"]), [name])

    def test_graph_throttling_is_waited_out(self):
        user = self.add_user(groups=["g%d" % i for i in range(220)] + [ADMINS])
        self.fake.call("POST", "/_fake/entra/config", {"graphThrottle": {"count": 1, "retryAfter": 1}})
        self.fake.call("DELETE", "/_fake/log")
        self.assertEqual(self.signed_in_user(user)["orgRole"], "admin")
        graph = [e["status"] for e in self.fake.call("GET", "/_fake/log")[1] if "getMemberGroups" in e["path"]]
        self.assertEqual(graph, [429, 200])

    def test_graph_that_keeps_refusing_is_a_503_naming_it(self):
        user = self.add_user(groups=["g%d" % i for i in range(220)])
        self.fake.call("POST", "/_fake/entra/config", {"graphThrottle": {"count": 50, "retryAfter": 1}})
        try:
            self.assertSSOError(self.sign_in(user), 503, None, "too many groups", "Microsoft Graph", "429")
        finally:
            self.fake.call("POST", "/_fake/entra/config", {"graphThrottle": {"count": 0, "retryAfter": 1}})
        self.fake.call("POST", "/_fake/entra/config", {"graphDenied": True})
        try:
            self.assertSSOError(self.sign_in(user), 503, None, "Microsoft Graph",
                                "User.Read.All and GroupMember.Read.All")
        finally:
            self.fake.call("POST", "/_fake/entra/config", {"graphDenied": False})
        # nobody was provisioned by the refused sign-ins
        self.assertFalse([u for u in self.ok("GET", "/api/v1/users")["users"] if u["email"] == user["login"]])


class RequireGroup(GroupHelpers, SSOCase):
    EXTRA_ARGS = ("--oidc-group-role", "%s=admin,%s=member" % (ADMINS, DEVS), "--oidc-require-group")

    def test_users_outside_the_mapped_groups_are_refused(self):
        outsider = self.add_user(groups=[OPS])
        self.assertSSOError(self.sign_in(outsider), 403, None, outsider["login"], "--oidc-require-group")
        self.assertFalse([u for u in self.ok("GET", "/api/v1/users")["users"] if u["email"] == outsider["login"]])
        nobody = self.add_user()
        self.assertSSOError(self.sign_in(nobody), 403, None, "none of the groups")
        dev = self.add_user(groups=[OPS, DEVS])
        self.assertEqual(self.signed_in_user(dev)["orgRole"], "member")


class RequireGroupFromTheEnvironment(RequireGroup):
    """The same switch turned on by its variable instead of its flag."""
    EXTRA_ARGS = ("--oidc-group-role", "%s=admin,%s=member" % (ADMINS, DEVS))
    EXTRA_ENV = {"COFFER_OIDC_REQUIRE_GROUP": "true"}


class NamedGroupsClaim(GroupHelpers, SSOCase):
    """A provider that names groups (Keycloak's "groups" mapper with full paths, GitLab's groups) in a claim of
    its own name."""
    ISSUER_MODE = "self"
    EXTRA_ARGS = ("--oidc-groups-claim", "grp", "--oidc-group-role", "/staff/admins=admin")

    def test_group_names_in_a_claim_of_its_own(self):
        user = self.add_user(email=harness.unique("kc") + "@contoso.example",
                             extraClaims={"grp": ["/staff/admins", "/staff"]})
        self.assertEqual(self.signed_in_user(user)["orgRole"], "admin")
        # the Entra "groups" claim is not read when another is configured
        other = self.add_user(email=harness.unique("kc") + "@contoso.example", groups=["/staff/admins"])
        self.assertEqual(self.signed_in_user(other)["orgRole"], "member")

    def test_a_claim_that_is_no_list_is_refused(self):
        user = self.add_user(email=harness.unique("kc") + "@contoso.example", extraClaims={"grp": "/staff"})
        self.assertSSOError(self.sign_in(user), 401, None, '"grp" claim is not an array')


class ClientCertificate(GroupHelpers, SSOCase):
    """The application proves itself with a certificate: no client secret anywhere."""

    @classmethod
    def credential_args(cls, secret_file):
        cls.cert_dir = tempfile.mkdtemp(prefix="coffer-sso-cert-")
        path, cls.cert_pem = make_certificate(cls.cert_dir, "coffer-sso")
        return ["--oidc-client-certificate", path]

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.cert_dir, True)

    def setUp(self):
        super().setUp()
        self.register(self.cert_pem)

    def register(self, cert_pem):
        self.fake.call("POST", "/_fake/entra/apps", {"tenant": TENANT, "clientId": CLIENT_ID,
                                                     "certificate": cert_pem, "redirectUris": [self.callback]})

    def test_sign_in_with_a_client_assertion(self):
        user = self.add_user()
        self.fake.call("DELETE", "/_fake/log")
        self.signed_in_user(user)
        token = [e for e in self.fake.call("GET", "/_fake/log")[1] if e["path"].endswith("/oauth2/v2.0/token")]
        self.assertEqual(len(token), 1)
        form = token[0]["form"]
        self.assertEqual(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        self.assertIn("redacted", form["client_assertion"])
        self.assertNotIn("client_secret", form)
        # and Graph's app token on overage is asked for with an assertion too
        big = self.add_user(groups=["g%d" % i for i in range(210)] + [OPS])
        self.fake.call("DELETE", "/_fake/log")
        self.signed_in_user(big)
        log = self.fake.call("GET", "/_fake/log")[1]
        creds = [e for e in log if e["form"].get("grant_type") == "client_credentials"]
        self.assertTrue(all("client_assertion" in e["form"] and "client_secret" not in e["form"] for e in creds))
        self.assertEqual([e["status"] for e in log if "getMemberGroups" in e["path"]], [200])
        self.assertNotIn("PRIVATE KEY", self.server.stderr)

    def test_a_certificate_entra_does_not_know_is_refused(self):
        other_dir = tempfile.mkdtemp(prefix="coffer-sso-cert-")
        self.addCleanup(shutil.rmtree, other_dir, True)
        _, other_pem = make_certificate(other_dir, "another")
        self.register(other_pem)
        self.assertSSOError(self.sign_in(self.add_user()), 401, None, "refused the code", "AADSTS700027")

    def test_bad_certificates_refuse_to_start(self):
        tmp = tempfile.mkdtemp(prefix="coffer-sso-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert_only = os.path.join(tmp, "cert-only.pem")
        with open(cert_only, "w") as f:
            f.write(self.cert_pem)
        secret_file = os.path.join(tmp, "secret")
        with open(secret_file, "w") as f:
            f.write("s3cret-value\n")
        path, _ = make_certificate(tmp, "both")
        base = ["--oidc-entra-tenant", TENANT, "--oidc-client-id", CLIENT_ID,
                "--oidc-redirect-url", "http://127.0.0.1:9/api/v1/sso/oidc/callback"]
        harness.assert_start_refused(self, [
            (base + ["--oidc-client-certificate", cert_only], "--oidc-client-certificate must hold a PEM "
                                                              "certificate and its private key"),
            (base + ["--oidc-client-certificate", os.path.join(tmp, "missing.pem")], "--oidc-client-certificate"),
            (base + ["--oidc-client-certificate", path, "--oidc-client-secret-file", secret_file], "not both"),
            (base + ["--oidc-client-certificate", path, "--oidc-require-group"], "--oidc-require-group needs"),
            (base + ["--oidc-client-certificate", path, "--oidc-group-role", "g=superuser"], "--oidc-group-role"),
            (base + ["--oidc-client-certificate", path, "--oidc-group-role", "=admin"], "--oidc-group-role"),
        ])


if __name__ == "__main__":
    import unittest
    unittest.main()
