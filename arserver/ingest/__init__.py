"""Ingest: observations from HTTP (and, next, MQTT adapters) validated and stored through one
write path."""
