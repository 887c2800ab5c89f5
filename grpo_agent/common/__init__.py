"""Machinery shared by the agents: base class, buffers, callbacks, logger, schedules."""
