"""Parking insight, pure logic (data in, data out, no I/O): occupancy of zones and car parks
from bay sensors and counters, weekly profiles, and short-term forecasts with their backtest."""
