"""Agent connections: the sockets, the sessions on them, and the watch for lost agents."""
