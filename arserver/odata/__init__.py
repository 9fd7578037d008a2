"""OData query options and resource paths as the OGC SensorThings API uses them, parsed into
plain values with limits that keep every request's work bounded (no I/O, no database)."""
