"""nid-gateway: policy enforcement point and authorization server for the iWlz nID network."""

__version__ = "0.1.0"
