"""Single sign-on for the browser: OpenID Connect (any issuer, found by discovery) and GitHub
OAuth, through Authlib. ``routes`` has ``GET /login/{provider}`` and its callback; ``flow``
the signed cookie that carries a sign-in's state, nonce and PKCE verifier; ``providers`` the
code exchange and who the provider says the user is; ``admission`` the allow-list and the
user a first sign-in creates."""
