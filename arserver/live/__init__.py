"""The live overlay hub: the bus that carries committed change events between processes, the
protocol state machine of a client session, the subscription index and the fan-out."""
