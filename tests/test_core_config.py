"""Configuration and master data: clear errors naming file and line, secrets only from the environment."""

import pytest

from orderbots import config
from orderbots.errors import ConfigError
from orderbots.masterdata import MasterData


def test_defaults_without_a_config_file(home):
    settings = config.load(home)
    assert settings.db_path == home / "runlog" / "orderbots.db"
    assert settings.rules_dir == home / "rules"


def test_malformed_config_names_file_and_line(home):
    (home / "orderbots.yaml").write_text("runlog: runlog\nbrowser:\n  executable: [oops\n")
    with pytest.raises(ConfigError, match=r"orderbots\.yaml:\d+"):
        config.load(home)


def test_section_must_be_a_mapping(home):
    (home / "orderbots.yaml").write_text("runlog: runlog\nbrowser: chromium\n")
    with pytest.raises(ConfigError, match=r"orderbots\.yaml:2: 'browser' must be a mapping"):
        config.load(home).section("browser")


def test_secret_names_the_variable_never_a_value(monkeypatch):
    monkeypatch.delenv("ORDERBOTS_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match="ORDERBOTS_TEST_SECRET"):
        config.secret("ORDERBOTS_TEST_SECRET", "ERP password")
    monkeypatch.setenv("ORDERBOTS_TEST_SECRET", "s3cr3t")
    assert config.secret("ORDERBOTS_TEST_SECRET") == "s3cr3t"


def test_shipped_master_data_loads(settings):
    data = MasterData.load(settings.rules_dir / "data")
    assert data.find_customer("ORDERS@ACME-RETAIL.EXAMPLE").id == "C1001"
    assert data.customers["C1003"].locale == "zh-CN"
    assert data.price("C1003", "SKU-3001")[0] == "CNY"
    assert data.price("C1001", "SKU-3001")[0] == "EUR"


def test_bad_master_data_names_file_line_and_column(tmp_path):
    (tmp_path / "customers.csv").write_text("id,name,email,locale,currency,credit_limit,country\n"
                                            "C1,A,a@x,en,EUR,lots,GB\n")
    (tmp_path / "items.csv").write_text("sku,description\n")
    with pytest.raises(ConfigError, match=r"customers\.csv:2: column 'credit_limit'"):
        MasterData.load(tmp_path)
    (tmp_path / "customers.csv").write_text("id,name,email,locale,currency,credit_limit,country\n")
    with pytest.raises(ConfigError, match=r"items\.csv:1: missing column\(s\) unit, unit_price"):
        MasterData.load(tmp_path)
