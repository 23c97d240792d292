"""Kafka client security from the config, for both kinds of client: librdkafka (the Python runners, the simulator,
the admin helpers) and the Java clients of the Flink job's KafkaSource and KafkaSink.

    kafka.security_protocol   PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    kafka.sasl_mechanism      PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (SASL_* only)
    kafka.sasl_username       the SASL user
    kafka.sasl_password_env   the SASL password from this environment variable, or
    kafka.sasl_password_file  from this file (never from the config file itself, never printed)
    kafka.ssl_ca_file         a PEM CA bundle to verify the brokers with (SSL / SASL_SSL; null: the system's)

`use(cfg)` makes every librdkafka client of this process take the settings (the CLI calls it once, after loading
the config); `java_properties(cfg)` are the same settings under the Java client's names."""
from __future__ import annotations

import os
from pathlib import Path

_LOGIN = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
          "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
          "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}
_CURRENT: dict[str, str] = {}


class KafkaSecurityError(ValueError):
    """Security settings that cannot be used (a password source that is empty, a mechanism without a user)."""


def _password(k) -> str | None:
    if k.sasl_password_env:
        value = os.environ.get(k.sasl_password_env)
        if not value:
            raise KafkaSecurityError(f"kafka.sasl_password_env names ${k.sasl_password_env}, which is not set")
        return value
    if k.sasl_password_file:
        try:
            return Path(k.sasl_password_file).read_text().strip()
        except OSError as exc:
            raise KafkaSecurityError(f"kafka.sasl_password_file {k.sasl_password_file}: {exc.strerror}") from None
    return None


def librdkafka_properties(cfg) -> dict[str, str]:
    """The settings under librdkafka's names (empty for PLAINTEXT)."""
    k = cfg.kafka
    if k.security_protocol == "PLAINTEXT":
        return {}
    out = {"security.protocol": k.security_protocol}
    if k.security_protocol.startswith("SASL_"):
        out["sasl.mechanisms"] = k.sasl_mechanism
        out["sasl.username"] = k.sasl_username
        out["sasl.password"] = _password(k)
    if k.security_protocol.endswith("SSL") and k.ssl_ca_file:
        out["ssl.ca.location"] = k.ssl_ca_file
    return out


def java_properties(cfg) -> dict[str, str]:
    """The same settings under the Java Kafka client's names (for the Flink job's source and sinks)."""
    k = cfg.kafka
    if k.security_protocol == "PLAINTEXT":
        return {}
    out = {"security.protocol": k.security_protocol}
    if k.security_protocol.startswith("SASL_"):
        quote = lambda v: v.replace("\\", "\\\\").replace('"', '\\"')  # noqa: E731
        out["sasl.mechanism"] = k.sasl_mechanism
        out["sasl.jaas.config"] = (f'{_LOGIN[k.sasl_mechanism]} required username="{quote(k.sasl_username)}" '
                                   f'password="{quote(_password(k))}";')
    if k.security_protocol.endswith("SSL") and k.ssl_ca_file:
        out["ssl.truststore.type"] = "PEM"
        out["ssl.truststore.location"] = k.ssl_ca_file
    return out


def use(cfg) -> None:
    """Every librdkafka client this process builds from now on takes the config's security settings."""
    _CURRENT.clear()
    _CURRENT.update(librdkafka_properties(cfg))


def current() -> dict[str, str]:
    return dict(_CURRENT)
