"""Kafka ingest: decode and validate contract events, batch them, publish them into the lake.

Pure decoding lives apart from the consumer loop so most of it is tested without a broker.
"""


class IngestError(Exception):
    """Base error of the ingest package."""


class SettingsError(IngestError):
    """A setting has a bad value; the message names the setting."""
