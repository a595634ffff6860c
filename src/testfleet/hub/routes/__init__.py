"""The hub's HTTP and WebSocket routes, one module per area."""
