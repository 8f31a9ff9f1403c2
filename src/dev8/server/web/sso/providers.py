"""The identity providers: where a sign-in starts (the authorization URL) and, once the
browser is back with a code, who the provider says the user is. Authlib does the OAuth 2
client's work (PKCE S256, the token request) and the ID token's checks; joserfc (Authlib's
JOSE library) checks its signature."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from authlib.integrations.base_client.errors import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from dev8.core.errors import ProviderError, Unauthorized
from dev8.server.settings import Settings
from dev8.server.web.sso.flow import Flow

HTTP_TIMEOUT = 10.0
METADATA_SECONDS = 3600.0
CLOCK_LEEWAY = 120
REFUSED_CODE = "the identity provider did not accept this sign-in; sign in again"


@dataclass(frozen=True)
class FoundIdentity:
    """Who the provider says signed in. ``email`` is set only when the provider vouches
    for it (verified) and is lowercased; ``name_hint`` becomes the first user name."""

    issuer: str
    subject: str
    email: str = ""
    name_hint: str = ""
    github_login: str = ""  # lowercased; GitHub only
    orgs: frozenset[str] = frozenset()  # lowercased GitHub organisations


class IdentityProvider(Protocol):
    slug: str  # in the URL: /login/{slug}
    label: str  # on the button

    async def authorize_url(self, flow: Flow, redirect_uri: str) -> str: ...

    async def identify(self, code: str, flow: Flow, redirect_uri: str) -> FoundIdentity: ...


def configured_providers(settings: Settings) -> dict[str, IdentityProvider]:
    """The providers the settings configure, by slug, in the order of their buttons."""
    found: dict[str, IdentityProvider] = {}
    if settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret:
        found["oidc"] = OidcProvider(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            label=settings.oidc_name,
            scopes=settings.oidc_scopes,
        )
    if settings.github_client_id and settings.github_client_secret:
        found["github"] = GitHubProvider(
            web_url=settings.github_url.rstrip("/"),
            api_url=settings.github_api_url.rstrip("/"),
            client_id=settings.github_client_id,
            client_secret=settings.github_client_secret.get_secret_value(),
            wants_orgs=bool(settings.sso_allowed_github_orgs.strip()),
        )
    return found


def provider_buttons(settings: Settings) -> list[tuple[str, str]]:
    """(slug, label) of each configured provider, for the sign-in page."""
    return [(slug, provider.label) for slug, provider in configured_providers(settings).items()]


def _client(client_id: str, secret: str, scope: str, redirect_uri: str) -> Any:
    return AsyncOAuth2Client(
        client_id,
        secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT,
    )


async def _exchange(client: Any, token_endpoint: str, code: str, flow: Flow) -> dict[str, Any]:
    """The token response for ``code``: ``Unauthorized`` if the provider refuses it (used
    already, expired, or the PKCE verifier does not match), ``ProviderError`` if it cannot
    be asked."""
    try:
        token = await client.fetch_token(
            token_endpoint,
            grant_type="authorization_code",
            code=code,
            code_verifier=flow.verifier,
        )
    except OAuthError as exc:
        raise Unauthorized(REFUSED_CODE) from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderError(f"cannot reach the identity provider's token endpoint: {exc}") from exc
    if not isinstance(token, Mapping) or "access_token" not in token:
        raise Unauthorized(REFUSED_CODE)
    return dict(token)


@dataclass
class OidcProvider:
    """Any OpenID Connect provider (Keycloak, Okta, Google, Entra ID...): its endpoints and
    keys from discovery, the authorization code flow with PKCE and a nonce."""

    issuer: str
    client_id: str
    client_secret: str
    label: str
    scopes: str
    slug: str = "oidc"
    _metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    _fetched_at: float = field(default=0.0, repr=False)
    _jwks: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, fetched at most once an hour; its ``issuer`` must be the
        one configured (OpenID Connect Discovery, section 4.3)."""
        async with self._lock:
            if self._metadata and time.monotonic() - self._fetched_at < METADATA_SECONDS:
                return self._metadata
            url = f"{self.issuer}/.well-known/openid-configuration"
            document = await _get_json(url, "discovery document")
            if str(document.get("issuer", "")).rstrip("/") != self.issuer:
                raise ProviderError(
                    f"the identity provider at {self.issuer} names another issuer "
                    f"({str(document.get('issuer'))[:200]}); check DEV8_OIDC_ISSUER"
                )
            self._metadata, self._fetched_at, self._jwks = document, time.monotonic(), {}
            return document

    async def authorize_url(self, flow: Flow, redirect_uri: str) -> str:
        endpoint = str((await self.metadata())["authorization_endpoint"])
        async with _client(self.client_id, self.client_secret, self.scopes, redirect_uri) as c:
            url, _state = c.create_authorization_url(
                endpoint, state=flow.state, nonce=flow.nonce, code_verifier=flow.verifier
            )
        return str(url)

    async def identify(self, code: str, flow: Flow, redirect_uri: str) -> FoundIdentity:
        metadata = await self.metadata()
        async with _client(self.client_id, self.client_secret, self.scopes, redirect_uri) as c:
            token = await _exchange(c, str(metadata["token_endpoint"]), code, flow)
        claims = await self.id_token_claims(token, flow.nonce, metadata)
        return identity_from_claims(self.issuer, claims)

    async def id_token_claims(
        self, token: Mapping[str, Any], nonce: str, metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims once its signature (the provider's keys), issuer,
        audience, expiry, nonce and access-token hash are checked."""
        if "id_token" not in token:
            raise Unauthorized("the identity provider sent no ID token; is 'openid' a scope?")
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [name for name in algorithms if name != "none"]
        try:
            try:
                decoded = jwt.decode(token["id_token"], await self._keys(False), algorithms)
            except InvalidKeyIdError:  # the provider rotated its keys
                decoded = jwt.decode(token["id_token"], await self._keys(True), algorithms)
            options = {
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.client_id},
            }
            params = {
                "nonce": nonce,
                "client_id": self.client_id,
                "access_token": token["access_token"],
            }
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(leeway=CLOCK_LEEWAY)
        except (JoseError, ValueError) as exc:
            raise Unauthorized(f"the ID token is not valid ({exc}); sign in again") from exc
        return dict(claims)

    async def _keys(self, refresh: bool) -> KeySet:
        if refresh or not self._jwks:
            uri = str((await self.metadata())["jwks_uri"])
            self._jwks = await _get_json(uri, "keys")
        return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]


def identity_from_claims(issuer: str, claims: Mapping[str, Any]) -> FoundIdentity:
    """An OpenID Connect identity: the email counts only if ``email_verified`` is true."""
    email = str(claims.get("email") or "").strip().lower()
    verified = claims.get("email_verified") is True
    hint = str(claims.get("preferred_username") or email.partition("@")[0] or "")
    return FoundIdentity(
        issuer=issuer,
        subject=str(claims["sub"]),
        email=email if verified else "",
        name_hint=hint,
    )


@dataclass
class GitHubProvider:
    """GitHub's OAuth apps (github.com or GitHub Enterprise Server): the user by their
    numeric id, the primary verified email, and their organisations when an allow-list
    names some."""

    web_url: str
    api_url: str
    client_id: str
    client_secret: str
    wants_orgs: bool
    slug: str = "github"
    label: str = "GitHub"

    @property
    def scopes(self) -> str:
        return "read:user user:email" + (" read:org" if self.wants_orgs else "")

    async def authorize_url(self, flow: Flow, redirect_uri: str) -> str:
        async with _client(self.client_id, self.client_secret, self.scopes, redirect_uri) as c:
            url, _state = c.create_authorization_url(
                f"{self.web_url}/login/oauth/authorize",
                state=flow.state,
                code_verifier=flow.verifier,
                allow_signup="false",
            )
        return str(url)

    async def identify(self, code: str, flow: Flow, redirect_uri: str) -> FoundIdentity:
        async with _client(self.client_id, self.client_secret, self.scopes, redirect_uri) as c:
            endpoint = f"{self.web_url}/login/oauth/access_token"
            await _exchange(c, endpoint, code, flow)
            user = await self._api(c, "/user")
            emails = await self._api(c, "/user/emails")
            orgs = await self._api(c, "/user/orgs") if self.wants_orgs else []
        login = str(user.get("login") or "").lower()
        return FoundIdentity(
            issuer=self.web_url,
            subject=str(user["id"]),
            email=primary_verified_email(emails),
            name_hint=login,
            github_login=login,
            orgs=frozenset(str(org.get("login", "")).lower() for org in orgs),
        )

    async def _api(self, client: Any, path: str) -> Any:
        try:
            answer = await client.get(
                self.api_url + path, headers={"Accept": "application/vnd.github+json"}
            )
            answer.raise_for_status()
            return answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderError(f"GitHub's API answered {path} with an error: {exc}") from exc


def primary_verified_email(emails: Any) -> str:
    for entry in emails if isinstance(emails, list) else []:
        if isinstance(entry, dict) and entry.get("primary") and entry.get("verified") is True:
            return str(entry.get("email") or "").strip().lower()
    return ""


async def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            answer = await client.get(url, headers={"Accept": "application/json"})
            answer.raise_for_status()
            document = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderError(f"cannot read the identity provider's {what} at {url}: {exc}") from exc
    if not isinstance(document, dict):
        raise ProviderError(f"the identity provider's {what} at {url} is not a JSON object")
    return document
