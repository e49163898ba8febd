"""The token and proxy tests run against the real gateway of ``tests/pep/conftest.py``."""

from tests.pep import conftest as _pep

# Re-exported fixtures (assignment, so pytest finds them here too).
upstream = _pep.upstream
make_gateway = _pep.make_gateway
gateway = _pep.gateway
