"""A loopback OAuth 2.0 authorization server, as Google's accounts.google.com and
oauth2.googleapis.com behave, for the platforms whose API acts as a user.

A platform emulator owns one and routes its authorize and token paths here. The authorize
endpoint plays the consent screen: it checks the request the way Google does (client,
loopback redirect, scopes, PKCE S256) and redirects back with a code, or with
`error=access_denied` when `deny` is set. The token endpoint checks the client secret, the
code (once, for its redirect URI) and the code verifier against the challenge, and answers
in Google's shapes: `{"error": "invalid_grant", "error_description": "Bad Request"}`.
Access tokens expire after `lifetime` seconds, or at once with `expire_access()`.

Platforms that differ say so in the fields: `registered` redirect URIs instead of any
loopback one, another `scope_separator`, what a refusal carries (`denied`), a `fragment`
after the redirect; Meta's token endpoints are in testing/meta.py.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from mentionwatch.testing.server import Request, Response, json_response

# Google's answer to a call without a valid access token.
UNAUTHENTICATED = {
    "error": {
        "code": 401,
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access "
        "token, login cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "errors": [
            {
                "message": "Invalid Credentials",
                "domain": "global",
                "reason": "authError",
                "location": "Authorization",
                "locationType": "header",
            }
        ],
        "status": "UNAUTHENTICATED",
    }
}


@dataclass
class AuthServer:
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    lifetime: int = 3599
    deny: bool = False  # the user clicks "Cancel" on the consent screen
    codes: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)
    access: dict[str, float] = field(default_factory=dict)  # token -> expiry
    refresh: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)  # every token handed out (for leak checks)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    registered: tuple[str, ...] = ()  # redirect URIs of the app; (): any loopback (Desktop)
    scope_separator: str = " "
    denied: tuple[tuple[str, str], ...] = (("error", "access_denied"),)
    fragment: str = ""  # after the redirect's query (Meta adds "#_")
    code_prefix: str = "4/0A"

    def seed_refresh_token(self, token: str) -> str:
        """A refresh token this server accepts without a browser (the demo's, the tests')."""
        self.refresh.add(token)
        self.issued.append(token)
        return token

    def expire_access(self) -> None:
        self.access = dict.fromkeys(self.access, 0.0)

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        return header.startswith("Bearer ") and self.access.get(token, 0.0) > time.time()

    def handle_authorize(self, request: Request) -> Response:
        args = {k: v[0] for k, v in request.query.items()}
        self.authorize_requests.append(args)
        redirect = args.get("redirect_uri", "")
        if args.get("client_id") != self.client_id:
            return _page(401, "Error 401: invalid_client", "The OAuth client was not found.")
        parts = urlsplit(redirect)
        if self.registered and redirect not in self.registered:
            return _page(
                400,
                "URL Blocked",
                "This redirect failed because the redirect URI is not whitelisted in the app's "
                "Client OAuth Settings.",
            )
        if not self.registered and (
            parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "[::1]")
        ):
            return _page(
                400,
                "Error 400: redirect_uri_mismatch",
                "Desktop clients may only redirect to a loopback address.",
            )
        if args.get("response_type") != "code":
            return self._back(redirect, {"error": "unsupported_response_type"}, args)
        wanted = {s.strip() for s in (args.get("scope") or "").split(self.scope_separator)} - {""}
        if not wanted or not wanted <= set(self.scopes):
            return self._back(redirect, {"error": "invalid_scope"}, args)
        challenge = args.get("code_challenge")
        if challenge and args.get("code_challenge_method") != "S256":
            return self._back(
                redirect,
                {"error": "invalid_request", "error_description": "Invalid code_challenge_method"},
                args,
            )
        if self.deny:
            return self._back(redirect, dict(self.denied), args)
        code = self.code_prefix + secrets.token_urlsafe(30)
        self.codes[code] = (redirect, challenge, " ".join(sorted(wanted)))
        return self._back(redirect, {"code": code, "scope": " ".join(sorted(wanted))}, args)

    def _back(self, redirect: str, params: dict[str, str], args: dict[str, str]) -> Response:
        if "state" in args:
            params = {"state": args["state"], **params}
        joiner = "&" if "?" in redirect else "?"
        return Response(
            302,
            b"",
            {"Location": f"{redirect}{joiner}{urlencode(params)}{self.fragment}"},
            "text/html",
        )

    def handle_token(self, request: Request) -> Response:
        form = request.form()
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return json_response(
                {"error": "invalid_client", "error_description": "Unauthorized"}, 401
            )
        grant = form.get("grant_type")
        if grant == "authorization_code":
            found = self.codes.pop(form.get("code", ""), None)
            if found is None or found[0] != form.get("redirect_uri"):
                return _invalid_grant("Bad Request")
            _, challenge, scope = found
            if challenge is not None and _s256(form.get("code_verifier", "")) != challenge:
                return _invalid_grant("Invalid code verifier.")
            refresh = "1//0g" + secrets.token_urlsafe(40)
            self.refresh.add(refresh)
            self.issued.append(refresh)
            return json_response({**self._access(scope), "refresh_token": refresh})
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh:
                return _invalid_grant("Token has been expired or revoked.")
            return json_response(self._access(" ".join(self.scopes)))
        return json_response(
            {
                "error": "unsupported_grant_type",
                "error_description": f"Invalid grant_type: {grant}",
            },
            400,
        )

    def _access(self, scope: str) -> dict[str, object]:
        token = "ya29.a0" + secrets.token_urlsafe(60)
        self.access[token] = time.time() + self.lifetime
        self.issued.append(token)
        return {
            "access_token": token,
            "expires_in": self.lifetime,
            "scope": scope,
            "token_type": "Bearer",
        }


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _invalid_grant(description: str) -> Response:
    return json_response({"error": "invalid_grant", "error_description": description}, 400)


def _page(status: int, title: str, text: str) -> Response:
    body = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{text}</p>"
    return Response(status, body, {}, "text/html; charset=utf-8")
