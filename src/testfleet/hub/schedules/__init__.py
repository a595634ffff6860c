"""Schedules: descriptors started on a cron timetable, once per fire across hubs."""
