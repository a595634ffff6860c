"""Artifacts: files a job's steps keep, uploaded by agents, stored, listed and downloaded."""
