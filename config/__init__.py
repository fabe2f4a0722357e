"""Settings of e911d: environment (``E911_`` prefix, ``__`` nesting) and an optional TOML file."""

from e911d.config.dsn import mask_dsn
from e911d.config.loading import load_settings, masked_settings
from e911d.config.settings import (
    ChecksSettings,
    ConfigError,
    GeoIpSettings,
    HttpSettings,
    KafkaSettings,
    LogSettings,
    PostgresSettings,
    Settings,
    TopicSettings,
)

__all__ = [
    "ChecksSettings",
    "ConfigError",
    "GeoIpSettings",
    "HttpSettings",
    "KafkaSettings",
    "LogSettings",
    "PostgresSettings",
    "Settings",
    "TopicSettings",
    "load_settings",
    "mask_dsn",
    "masked_settings",
]
