"""Conformance suite: the native Agently scripts 01-09 run through triggerflow_temporal."""
