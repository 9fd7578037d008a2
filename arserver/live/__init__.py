"""The live overlay hub: change events, the bus that carries them, and the WebSocket side."""
