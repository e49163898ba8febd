"""The network's adresboek (interim iWlz format): loaded, validated, reloaded; the
recipient -> endpoint step of the central notification route (:mod:`~gateway.adresboek.book`).
"""

from gateway.adresboek.book import (
    Adresboek,
    AdresboekError,
    AdresboekSource,
    Recipient,
    load_adresboek,
)

__all__ = ["Adresboek", "AdresboekError", "AdresboekSource", "Recipient", "load_adresboek"]
