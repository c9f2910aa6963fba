"""Connection settings come from temporalio's envconfig: address, namespace, API key, TLS."""

from __future__ import annotations

from worker.connect import DEFAULT_ADDRESS, connect_config


def test_defaults_to_the_local_dev_server(monkeypatch):
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS",
                 "TEMPORAL_CONFIG_FILE", "TEMPORAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", "/nonexistent/temporal.toml")
    config = connect_config()
    assert (config["target_host"], config["namespace"]) == (DEFAULT_ADDRESS, "default")
    assert not config.get("tls") and not config.get("api_key")


def test_cloud_namespace_with_api_key_uses_tls(monkeypatch):
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", "/nonexistent/temporal.toml")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "itsm.a1b2c.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "itsm.a1b2c")
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret-key")
    config = connect_config()
    assert config["target_host"] == "itsm.a1b2c.tmprl.cloud:7233"
    assert config["namespace"] == "itsm.a1b2c" and config["api_key"] == "secret-key"
    assert config["tls"]


def test_mtls_client_certificate_from_files(monkeypatch, tmp_path):
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", "/nonexistent/temporal.toml")
    monkeypatch.delenv("TEMPORAL_API_KEY", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "itsm.a1b2c.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(cert))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(key))
    tls = connect_config()["tls"]
    assert tls.client_cert == cert.read_bytes() and tls.client_private_key == key.read_bytes()
