"""Live views of the lab for browsers and other watchers: a job's events as they are stored,
and "the lab changed" notices, over one WebSocket per client (`/api/v1/live`)."""
