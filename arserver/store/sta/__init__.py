"""The OGC SensorThings API v1.1 data model over the sensor tables (read-only): entity types as
SQL selectables (:mod:`.model`), ``$filter`` and ``$orderby`` as SQL (:mod:`.filters`), and the
queries that read collections, entities and expansions (:mod:`.reader`)."""
