"""Webhooks: signed deliveries of job and fleet events, retried in the background."""
