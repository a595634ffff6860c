"""A small shop: the example application testfleet's coverage probe measures."""
