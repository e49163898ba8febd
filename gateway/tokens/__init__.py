"""Access-token validation for the PEP: verification, trusted issuers, claim mapping."""
