"""One service per kind of change: the only code that writes that kind, and the only code that
publishes its change events, after the commit.

Shape (that of :class:`~arserver.services.observations.ObservationWriter`): a class built once
from the engine and the bus; each method checks, persists in one transaction through ``store``,
and then publishes the change events of what it committed. A bus failure never fails a write
that committed. Routers, job runners and ingest adapters call services; none of them touches
the bus.
"""
