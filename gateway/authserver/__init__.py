"""The authorization server: OAuth2 client_credentials issuing nID access tokens (RFC0014).

Endpoints: ``POST /auth/token``, ``GET /.well-known/jwks.json`` and
``GET /.well-known/oauth-authorization-server`` (RFC 8414).

:func:`~gateway.authserver.setup.setup_authserver` adds them to the app. Nothing is
re-exported here.
"""
