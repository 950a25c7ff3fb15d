"""Edge Registry Mirror: a pull-through Registry v2 / OCI mirror over the registry:2 storage layout."""

__version__ = "0.1.0"
