"""Certificate subjects for ``tls_client_auth``: one canonical text per distinguished name.

In config because loading checks ``tls_subject`` with it; the token endpoint compares the
presented certificate in the same form.
"""

from __future__ import annotations

import re

from cryptography import x509

_SEPARATOR = re.compile(r"(?<!\\)\s*,\s*")


def normalise_subject(dn: str) -> str:
    """Canonical RFC 4514 text of a DN written in config (``CN=ciz, O=CIZ`` -> ``CN=ciz,O=CIZ``)."""
    try:
        # Tolerate the "CN=a, O=b" spacing of openssl output; RFC 4514 has none.
        name = x509.Name.from_rfc4514_string(_SEPARATOR.sub(",", dn.strip()))
    except ValueError as exc:
        raise ValueError(str(exc) or "not an RFC 4514 distinguished name") from None
    if not list(name):
        raise ValueError("empty distinguished name")
    return name.rfc4514_string()


def certificate_subject(der: bytes) -> str:
    """Canonical RFC 4514 subject of a DER certificate (as presented in the TLS handshake)."""
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()
