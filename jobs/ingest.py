"""The core's `Ingest` built from the config, the same way for every engine (codec on the configured registry)."""
from __future__ import annotations

import time

from shiftstream.schemas import wire_codec
from shiftstream.transforms.config import Config
from shiftstream.transforms.ingest import Ingest
from shiftstream.transforms.pseudonyms import Pseudonymiser


def ingest_for(cfg: Config, pseudonymise: Pseudonymiser, source: str = "events", clock=time.time,
               monotonic=time.monotonic) -> Ingest:
    """Interaction messages of one source, decoded with the registry `kafka.schema_registry_url` names."""
    return Ingest(cfg, pseudonymise, wire_codec(cfg.kafka.schema_registry_url, "interaction", cfg.kafka.writer_schemas).decode, clock,
                  monotonic, source)


def privacy_decoder(cfg: Config):
    """Decodes PrivacyRequest messages on the configured registry."""
    return wire_codec(cfg.kafka.schema_registry_url, "privacy_request", cfg.kafka.writer_schemas).decode
