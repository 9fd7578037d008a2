"""Ingest adapters: outside formats (LoRaWAN uplinks of The Things Stack v3 and ChirpStack v4
over MQTT) turned into calls of the observation service. HTTP ingest is the API's own route."""
