"""Glue between the command line and the library for the small commands (`info`, `data`)."""
