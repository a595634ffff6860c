"""testfleet: a self-hosted control plane for test labs."""

__version__ = "0.1.0"
