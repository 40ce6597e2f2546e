"""tarscascade: a TARS service registry with the IP-list cascade cache."""

__version__ = "0.1.0"
