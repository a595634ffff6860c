"""Developer mode: one developer takes control of a running job from the browser or the CLI
(`/api/v1/jobs/{id}/developer/ws`), pauses it at step boundaries and looks around."""
