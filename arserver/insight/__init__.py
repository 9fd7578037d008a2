"""Insight: pure logic over readings (no I/O): threshold rules that open and resolve alerts."""
