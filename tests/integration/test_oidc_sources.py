"""`--jwt-from`: the CLI fetches the pipeline's OIDC ID token from the CI system itself (docs/cli.md, "JWT tokens from
the CI system"), for `coffer login`, `coffer run` and `coffer export`.

A loopback http.server stands in for the CI systems' token endpoints and answers as they are documented:

- Azure DevOps ("Oidctoken - Create", REST API 7.1): POST {SYSTEM_OIDCREQUESTURI}?api-version=7.1-preview.1
  [&serviceConnectionId=ID] with `Authorization: Bearer $SYSTEM_ACCESSTOKEN`, answering {"oidcToken": "..."}; a
  refused access token is a 401 in Azure DevOps' error shape ({"$id", "innerException", "message", "typeName",
  "typeKey", "errorCode", "eventId"}) when the request asks for no sign-in redirect (X-TFS-FedAuthRedirect:
  Suppress), else a 203 sign-in page; a request without api-version is a 400 in the same shape.
- GitHub Actions: GET $ACTIONS_ID_TOKEN_REQUEST_URL (which carries ?api-version=2.0) [&audience=AUD] with
  `Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answering {"value": "..."}; without an audience the
  token's aud is the repository owner's URL, as GitHub documents.

The mock checks each request (method, path, query, Authorization) and mints real JWTs (RS256, openssl, with the
claims each CI system issues) that the Coffer server verifies against identities bound to those issuers, audiences
and subjects. GitLab's `id_tokens` variable, `env:VAR` and `file:PATH` are read locally. Checked: login with each
source; the one-line `coffer run`/`coffer export` that logs in for itself and stores nothing; every error names its
cause (variables not set, 401, 203, 400, malformed and token-less answers, plain http to another host, missing and
malformed files, flags that do not go together); no token or credential in any output or in the server log.
"""

import http.server
import json
import os
import shutil
import tempfile
import threading
import urllib.parse
import uuid

import harness
from test_identities import IdentityHelpers
from test_jwt_auth import Keys, claims, jwt_path

CI_VARS = ("SYSTEM_OIDCREQUESTURI", "SYSTEM_ACCESSTOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL",
           "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "COFFER_ID_TOKEN", "GITLAB_CI")

AZURE_ORG_ID = "6a2b3c4d-0000-4000-8000-00000000a200"
AZURE_ISSUER = "https://vstoken.dev.azure.com/" + AZURE_ORG_ID
AZURE_AUDIENCE = "api://AzureADTokenExchange"
AZURE_PIPELINE_SUB = "p://acme/app/deploy"
AZURE_CONNECTION = "5f1b2c3d-0000-4000-8000-0000000c0001"
AZURE_CONNECTION_SUB = "sc://acme/app/coffer-prod"
AZURE_PATH = ("/acme/0f3c1d2e-0000-4000-8000-000000000001/_apis/distributedtask/hubs/build/plans/"
              "1b2c3d4e-0000-4000-8000-000000000002/jobs/2c3d4e5f-0000-4000-8000-000000000003/oidctoken")
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_SUB = "repo:acme/app:ref:refs/heads/main"
GITHUB_DEFAULT_AUDIENCE = "https://github.com/acme"
GITHUB_PATH = ("/Ab12Cd34/00000000-0000-0000-0000-000000000000/_apis/distributedtask/hubs/Actions/plans/"
               "3d4e5f60-0000-4000-8000-000000000004/jobs/4e5f6071-0000-4000-8000-000000000005/idtoken")
GITLAB_ISSUER = "https://gitlab.example.com"
GITLAB_SUB = "project_path:acme/app:ref_type:branch:ref:main"


def azure_error(message, type_key):
    """An Azure DevOps REST error body."""
    return {"$id": "1", "innerException": None, "message": message,
            "typeName": "Microsoft.TeamFoundation.Framework.Server.%s, Microsoft.TeamFoundation.Framework.Server"
                        % type_key,
            "typeKey": type_key, "errorCode": 0, "eventId": 3000}


class MockCI:
    """The token endpoints of Azure DevOps and GitHub Actions on 127.0.0.1. requests records (method, path, query,
    headers) of each request; minted the JWTs handed out; override, when set, is answered instead: (status,
    content type, body bytes)."""

    def __init__(self, keys):
        self.keys = keys
        self.access_token = "azdo-access-" + uuid.uuid4().hex
        self.request_token = "gh-request-" + uuid.uuid4().hex
        self.requests = []
        self.minted = []
        self.override = None
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body, content_type="application/json; charset=utf-8"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_one(self, method):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                mock.requests.append((method, url.path, query, dict(self.headers.items())))
                if mock.override:
                    status, ctype, body = mock.override
                    return self.answer(status, body, ctype)
                auth = self.headers.get("Authorization") or ""
                if method == "POST" and url.path == AZURE_PATH:
                    return self.azure(query, auth)
                if method == "GET" and url.path == GITHUB_PATH:
                    return self.github(query, auth)
                return self.answer(404, {"message": "no such endpoint"})

            def azure(self, query, auth):
                if auth != "Bearer " + mock.access_token:
                    if self.headers.get("X-TFS-FedAuthRedirect") != "Suppress":
                        return self.answer(203, b"<html><title>Azure DevOps Services | Sign In</title></html>",
                                           "text/html; charset=utf-8")
                    return self.answer(401, azure_error(
                        "TF400813: The user '' is not authorized to access this resource.",
                        "UnauthorizedRequestException"))
                if query.get("api-version") != ["7.1-preview.1"]:
                    return self.answer(400, azure_error(
                        'No api-version was supplied for the "POST" request. The version must be supplied either '
                        'as part of the Accept header (e.g. "application/json; api-version=1.0") or as a query '
                        "parameter (e.g. '?api-version=1.0').", "VssVersionNotSpecifiedException"))
                sub = AZURE_PIPELINE_SUB
                if "serviceConnectionId" in query:
                    if query["serviceConnectionId"] != [AZURE_CONNECTION]:
                        return self.answer(400, azure_error(
                            "Service connection %s could not be found or has not been authorized for use."
                            % query["serviceConnectionId"][0], "InvalidRequestException"))
                    sub = AZURE_CONNECTION_SUB
                token = mock.mint(iss=AZURE_ISSUER, aud=AZURE_AUDIENCE, sub=sub)
                return self.answer(200, {"oidcToken": token})

            def github(self, query, auth):
                # The scheme is case-insensitive (GitHub's own example sends "bearer").
                scheme, _, credential = auth.partition(" ")
                if scheme.lower() != "bearer" or credential != mock.request_token:
                    return self.answer(401, b"", "text/plain")
                if query.get("api-version") != ["2.0"]:
                    return self.answer(400, {"message": "api-version is required"})
                audience = query.get("audience", [GITHUB_DEFAULT_AUDIENCE])[0]
                token = mock.mint(iss=GITHUB_ISSUER, aud=audience, sub=GITHUB_SUB)
                return self.answer(200, {"value": token})

            def do_GET(self):
                self.handle_one("GET")

            def do_POST(self):
                self.handle_one("POST")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def mint(self, **extra):
        token = self.keys.sign("rsa", claims(**extra))
        self.minted.append(token)
        return token

    def azure_env(self, **over):
        env = {"SYSTEM_OIDCREQUESTURI": self.base + AZURE_PATH, "SYSTEM_ACCESSTOKEN": self.access_token}
        env.update(over)
        return env

    def github_env(self, **over):
        env = {"ACTIONS_ID_TOKEN_REQUEST_URL": self.base + GITHUB_PATH + "?api-version=2.0",
               "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token}
        env.update(over)
        return env

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class OidcSources(IdentityHelpers, harness.ServerTestCase):
    server_env = {"COFFER_LOGIN_MAX_FAILURES": "1000"}

    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.mock = MockCI(cls.keys)
        cls.config_dir = tempfile.mkdtemp(prefix="coffer-oidc-config-")
        try:
            super().setUpClass()
        except Exception:
            cls.mock.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.mock.close()
            cls.keys.cleanup()
            shutil.rmtree(cls.config_dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.mock.requests.clear()
        self.mock.override = None
        self.project = self.create_project()
        self.secret_value = "s3cret-" + uuid.uuid4().hex[:8]
        self.set_secret(self.project["id"], "DB_PASSWORD", self.secret_value)
        self.outputs = []

    def tearDown(self):
        # Nothing the CI system handed out, nor the credential sent for it, is ever shown or logged.
        try:
            for token in self.mock.minted + [self.mock.access_token, self.mock.request_token]:
                for text in self.outputs:
                    self.assertNotIn(token, text, "a token or credential appears in the CLI's output")
            self.assertNotLogged(*self.mock.minted, self.mock.access_token, self.mock.request_token)
        finally:
            super().tearDown()

    def identity(self, issuer, audience, subject):
        ident = self.create_identity()
        self.add_member(self.project["id"], ident["id"], "viewer")
        self.ok("POST", jwt_path(ident["id"]), body={
            "configurationType": "static", "publicKeys": [self.keys.public("rsa")], "boundIssuer": issuer,
            "boundAudiences": audience, "boundSubject": subject})
        return ident["id"]

    def coffer(self, *args, env=None):
        """Runs the CLI with no Coffer credential at all, the CI variables unset unless env sets them, and a
        config directory of its own."""
        extra = {k: None for k in CI_VARS}
        extra["XDG_CONFIG_HOME"] = self.config_dir
        extra.update(env or {})
        rc, out, err = self.cli(*args, token=None, env=extra)
        self.outputs += [out, err]
        return rc, out, err

    def login(self, ident, *args, env=None):
        return self.coffer("login", "--method=jwt-auth", "--machine-identity-id", ident, "--silent", "--plain",
                           *args, env=env)

    def assertReads(self, access_token):
        got = self.get_as(access_token, self.project["id"], "DB_PASSWORD")
        self.assertEqual(got.status, 200, got.body[:300])
        self.assertEqual(got.json["secret"]["secretValue"], self.secret_value)

    def assertNothingStored(self):
        self.assertFalse(os.path.exists(os.path.join(self.config_dir, "coffer", "credentials.json")),
                         "a login for one command stored its token")

    # ----- Azure DevOps -----

    def test_azure_devops_pipeline_token(self):
        ident = self.identity(AZURE_ISSUER, AZURE_AUDIENCE, AZURE_PIPELINE_SUB)
        rc, out, err = self.login(ident, "--jwt-from", "azure-devops", env=self.mock.azure_env())
        self.assertEqual(rc, 0, err)
        self.assertReads(out.strip())
        self.assertEqual(len(self.mock.requests), 1)
        method, path, query, headers = self.mock.requests[0]
        self.assertEqual((method, path), ("POST", AZURE_PATH))
        self.assertEqual(query, {"api-version": ["7.1-preview.1"]})
        self.assertEqual(headers.get("Authorization"), "Bearer " + self.mock.access_token)
        self.assertEqual(headers.get("X-TFS-FedAuthRedirect"), "Suppress")

    def test_azure_devops_service_connection_token(self):
        ident = self.identity(AZURE_ISSUER, AZURE_AUDIENCE, AZURE_CONNECTION_SUB)
        rc, out, err = self.login(ident, "--jwt-from", "azure-devops", "--azure-devops-service-connection",
                                  AZURE_CONNECTION, env=self.mock.azure_env())
        self.assertEqual(rc, 0, err)
        self.assertReads(out.strip())
        self.assertEqual(self.mock.requests[0][2],
                         {"api-version": ["7.1-preview.1"], "serviceConnectionId": [AZURE_CONNECTION]})
        # The pipeline's own token has another subject: this identity refuses it.
        rc, out, err = self.login(ident, "--jwt-from", "azure-devops", env=self.mock.azure_env())
        self.assertEqual(rc, 1)
        self.assertIn("subject", err)
        # A connection Azure DevOps does not know: its 400 and message.
        rc, out, err = self.login(ident, "--jwt-from", "azure-devops", "--azure-devops-service-connection",
                                  str(uuid.uuid4()), env=self.mock.azure_env())
        self.assertEqual(rc, 1)
        self.assertIn("Azure DevOps refused the ID token request (HTTP 400", err)
        self.assertIn("could not be found", err)

    def test_azure_devops_errors(self):
        ident = self.identity(AZURE_ISSUER, AZURE_AUDIENCE, AZURE_PIPELINE_SUB)
        cases = [
            (self.mock.azure_env(SYSTEM_OIDCREQUESTURI=None), None,
             ["SYSTEM_OIDCREQUESTURI is not set", "Azure DevOps pipeline job", "System.OidcRequestUri"]),
            (self.mock.azure_env(SYSTEM_ACCESSTOKEN=None), None,
             ["SYSTEM_ACCESSTOKEN is not set", "SYSTEM_ACCESSTOKEN: $(System.AccessToken)"]),
            (self.mock.azure_env(SYSTEM_ACCESSTOKEN="wrong-" + uuid.uuid4().hex), None,
             ["Azure DevOps refused the ID token request (HTTP 401", "TF400813",
              "$(System.AccessToken)"]),
            (self.mock.azure_env(), (200, "application/json", b'{"oidcToken": '),
             ["HTTP 200 but not JSON"]),
            (self.mock.azure_env(), (200, "application/json", b'{"oidcToken": null}'),
             ['without a "oidcToken" string']),
            (self.mock.azure_env(), (203, "text/html", b"<html>Sign In</html>"),
             ["HTTP 203 but not JSON (a sign-in page: SYSTEM_ACCESSTOKEN was not accepted)"]),
            (self.mock.azure_env(), (200, "application/json", b'{"oidcToken": "not a jwt"}'),
             ["the token from Azure DevOps is not a signed JWT"]),
            (self.mock.azure_env(), (500, "application/json",
                                     json.dumps(azure_error("VS402854: boom", "Exception")).encode()),
             ["Azure DevOps could not answer the ID token request (HTTP 500: VS402854: boom)"]),
            (self.mock.azure_env(), (401, "application/json", json.dumps(azure_error(
                "token %s is not valid" % self.mock.access_token, "UnauthorizedRequestException")).encode()),
             ["(HTTP 401: its message is withheld: it quotes the credential)"]),
            (self.mock.azure_env(SYSTEM_OIDCREQUESTURI="http://ci.example.invalid" + AZURE_PATH), None,
             ["SYSTEM_OIDCREQUESTURI must be an https URL", "SYSTEM_ACCESSTOKEN would travel in clear"]),
            (self.mock.azure_env(SYSTEM_OIDCREQUESTURI="http://127.0.0.1:1@ci.example.invalid" + AZURE_PATH), None,
             ["SYSTEM_OIDCREQUESTURI must be an https URL"]),
            (self.mock.azure_env(SYSTEM_OIDCREQUESTURI="http://127.0.0.1:1" + AZURE_PATH), None,
             ["cannot get an ID token from Azure DevOps (SYSTEM_OIDCREQUESTURI): nothing is listening at "
              "http://127.0.0.1:1 "]),
        ]
        for env, override, words in cases:
            with self.subTest(words=words[0]):
                self.mock.override = override
                rc, out, err = self.login(ident, "--jwt-from", "azure-devops", env=env)
                self.assertEqual(rc, 1, err)
                self.assertEqual(out, "")
                for w in words:
                    self.assertIn(w, err)
        self.mock.override = None
        # Without the Suppress header Azure DevOps answers a refused token with its sign-in page: the mock
        # does, so the header is what turns the refusal into a 401 above.
        self.assertTrue(all(r[3].get("X-TFS-FedAuthRedirect") == "Suppress" for r in self.mock.requests))

    # ----- GitHub Actions -----

    def test_github_actions(self):
        ident = self.identity(GITHUB_ISSUER, "coffer", GITHUB_SUB)
        rc, out, err = self.login(ident, "--jwt-from", "github-actions", "--jwt-audience", "coffer",
                                  env=self.mock.github_env())
        self.assertEqual(rc, 0, err)
        self.assertReads(out.strip())
        method, path, query, headers = self.mock.requests[-1]
        self.assertEqual((method, path), ("GET", GITHUB_PATH))
        self.assertEqual(query, {"api-version": ["2.0"], "audience": ["coffer"]})
        self.assertEqual(headers.get("Authorization"), "Bearer " + self.mock.request_token)
        # An audience that needs escaping arrives intact.
        self.login(ident, "--jwt-from", "github-actions", "--jwt-audience", "api://coffer&x=1",
                   env=self.mock.github_env())
        self.assertEqual(self.mock.requests[-1][2]["audience"], ["api://coffer&x=1"])
        # Without --jwt-audience GitHub's default (the owner's URL) is asked for: this identity refuses it.
        rc, out, err = self.login(ident, "--jwt-from", "github-actions", env=self.mock.github_env())
        self.assertEqual(rc, 1)
        self.assertIn("audience", err)
        self.assertEqual(self.mock.requests[-1][2], {"api-version": ["2.0"]})

    def test_github_actions_errors(self):
        ident = self.identity(GITHUB_ISSUER, "coffer", GITHUB_SUB)
        for env, words in (
                (self.mock.github_env(ACTIONS_ID_TOKEN_REQUEST_URL=None),
                 ["ACTIONS_ID_TOKEN_REQUEST_URL is not set", "id-token: write"]),
                (self.mock.github_env(ACTIONS_ID_TOKEN_REQUEST_TOKEN=None),
                 ["ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set", "id-token: write"]),
                (self.mock.github_env(ACTIONS_ID_TOKEN_REQUEST_TOKEN="wrong-" + uuid.uuid4().hex),
                 ["GitHub Actions refused the ID token request (HTTP 401", "id-token: write"])):
            with self.subTest(words=words[0]):
                rc, out, err = self.login(ident, "--jwt-from", "github-actions", "--jwt-audience", "coffer",
                                          env=env)
                self.assertEqual(rc, 1, err)
                for w in words:
                    self.assertIn(w, err)
        self.mock.override = (200, "application/json", b'{"count": 1}')
        rc, out, err = self.login(ident, "--jwt-from", "github-actions", env=self.mock.github_env())
        self.assertEqual(rc, 1)
        self.assertIn('GitHub Actions answered the ID token request (HTTP 200) without a "value" string', err)

    # ----- GitLab, env:VAR, file:PATH -----

    def test_gitlab_env_and_file(self):
        ident = self.identity(GITLAB_ISSUER, "https://coffer.example", GITLAB_SUB)
        token = self.mock.mint(iss=GITLAB_ISSUER, aud="https://coffer.example", sub=GITLAB_SUB)
        rc, out, err = self.login(ident, "--jwt-from", "gitlab", env={"COFFER_ID_TOKEN": token})
        self.assertEqual(rc, 0, err)
        self.assertReads(out.strip())
        rc, out, err = self.login(ident, "--jwt-from", "env:MY_ID_TOKEN", env={"MY_ID_TOKEN": token})
        self.assertEqual(rc, 0, err)
        self.assertReads(out.strip())
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "token")
            with open(path, "w") as f:
                f.write(token + "\n")
            rc, out, err = self.login(ident, "--jwt-from", "file:" + path)
            self.assertEqual(rc, 0, err)
            self.assertReads(out.strip())
            with open(path, "w") as f:
                f.write("this is not a token\n")
            rc, out, err = self.login(ident, "--jwt-from", "file:" + path)
            self.assertEqual(rc, 1)
            self.assertIn("the token from the file %s is not a signed JWT" % path, err)
            open(path, "w").close()
            rc, out, err = self.login(ident, "--jwt-from", "file:" + path)
            self.assertEqual(rc, 1)
            self.assertIn("the token file %s is empty" % path, err)
            missing = os.path.join(d, "missing")
            rc, out, err = self.login(ident, "--jwt-from", "file:" + missing)
            self.assertEqual(rc, 1)
            self.assertIn("cannot read the token file %s: No such file or directory" % missing, err)
        rc, out, err = self.login(ident, "--jwt-from", "gitlab")
        self.assertEqual(rc, 1)
        self.assertIn("COFFER_ID_TOKEN is not set: declare it in the job's id_tokens", err)
        self.assertIn("--jwt-from env:NAME", err)
        rc, out, err = self.login(ident, "--jwt-from", "env:NOT_THERE")
        self.assertEqual(rc, 1)
        self.assertIn("the variable NOT_THERE (--jwt-from env:NOT_THERE) is not set", err)

    def test_flags_that_do_not_go_together(self):
        ident = self.identity(GITLAB_ISSUER, "https://coffer.example", GITLAB_SUB)
        for args, words in (
                (("--jwt-from", "jenkins"), "--jwt-from takes azure-devops, github-actions, gitlab"),
                (("--jwt-from", "file:"), "needs a file path"),
                (("--jwt-from", "env:"), "needs a variable name"),
                (("--jwt-from", "gitlab", "--jwt-audience", "x"), "--jwt-audience is for --jwt-from github-actions"),
                (("--jwt-from", "gitlab", "--azure-devops-service-connection", "x"),
                 "--azure-devops-service-connection is for --jwt-from azure-devops"),
                (("--jwt-audience", "x"), "go with --jwt-from"),
                (("--jwt-from", "gitlab", "--jwt", "a.b.c"), "give --jwt or --jwt-from, not both")):
            with self.subTest(args=args):
                rc, out, err = self.login(ident, *args)
                self.assertEqual(rc, 2, err)
                self.assertIn(words, err)
        rc, out, err = self.coffer("login", "--jwt-from", "gitlab", "--machine-identity-id", ident)
        self.assertEqual(rc, 2)
        self.assertIn("are for --method jwt-auth", err)
        rc, out, err = self.coffer("login", "--method=kubernetes", "--jwt-from", "gitlab",
                                   "--machine-identity-id", ident)
        self.assertEqual(rc, 2)
        self.assertIn("not for --method kubernetes", err)

    # ----- one line: log in and inject -----

    def test_run_and_export_log_in_for_themselves(self):
        azure = self.identity(AZURE_ISSUER, AZURE_AUDIENCE, AZURE_PIPELINE_SUB)
        rc, out, err = self.coffer("run", "--method=jwt-auth", "--jwt-from", "azure-devops",
                                   "--machine-identity-id", azure, "--projectId", self.project["id"], "--env", "dev",
                                   "--", "sh", "-c", 'printf "%s" "$DB_PASSWORD"', env=self.mock.azure_env())
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, self.secret_value)
        github = self.identity(GITHUB_ISSUER, "coffer", GITHUB_SUB)
        rc, out, err = self.coffer("export", "--method=jwt-auth", "--jwt-from=github-actions",
                                   "--jwt-audience=coffer", "--machine-identity-id=" + github,
                                   "--projectId=" + self.project["id"], "--format=dotenv",
                                   env=self.mock.github_env())
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "DB_PASSWORD='%s'\n" % self.secret_value)
        # Universal auth the same way (the client secret from the environment).
        m = self.machine(self.project["id"], "viewer", login=False)
        rc, out, err = self.coffer("run", "--client-id", m["clientId"], "--projectId", self.project["id"],
                                   "--command", 'printf "%s" "$DB_PASSWORD"',
                                   env={"INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET": m["clientSecret"]})
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, self.secret_value)
        self.assertNotIn(m["clientSecret"], out + err)
        self.assertNothingStored()

    def test_run_login_failures(self):
        azure = self.identity(AZURE_ISSUER, AZURE_AUDIENCE, AZURE_PIPELINE_SUB)
        base = ("run", "--method=jwt-auth", "--jwt-from", "azure-devops", "--machine-identity-id", azure,
                "--projectId", self.project["id"], "--", "sh", "-c", "echo RAN")
        # The CI system refuses: nothing runs.
        rc, out, err = self.coffer(*base, env=self.mock.azure_env(SYSTEM_ACCESSTOKEN="wrong"))
        self.assertEqual(rc, 1)
        self.assertNotIn("RAN", out)
        self.assertIn("HTTP 401", err)
        # Coffer refuses the token (an identity bound to another subject): nothing runs.
        other = self.identity(AZURE_ISSUER, AZURE_AUDIENCE, "p://acme/app/other")
        rc, out, err = self.coffer("export", "--method=jwt-auth", "--jwt-from", "azure-devops",
                                   "--machine-identity-id", other, "--projectId", self.project["id"],
                                   env=self.mock.azure_env())
        self.assertEqual(rc, 1)
        self.assertNotIn(self.secret_value, out)
        self.assertIn("exit 1", out)  # export fails closed: what an eval of it runs stops the shell
        self.assertIn("subject", err)
        # A token and login flags at once is a usage error.
        rc, out, err = self.coffer(*base[:-4], "--token", "whatever", "--", "true", env=self.mock.azure_env())
        self.assertEqual(rc, 2)
        self.assertIn("--token and the login flags", err)
        self.assertNothingStored()

    def test_help_names_the_flags(self):
        for command in ("login", "run", "export"):
            rc, out, _ = self.coffer(command, "--help")
            self.assertEqual(rc, 0)
            for flag in ("--jwt-from", "--jwt-audience", "--azure-devops-service-connection", "--method",
                         "--machine-identity-id"):
                self.assertIn(flag, out, command)


if __name__ == "__main__":
    import unittest
    unittest.main()
