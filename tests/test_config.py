"""Configuration: lookup order, and errors that name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimon.config import load_config, parse_config
from aimon.errors import ConfigError

MINIMAL = "warehouse:\n  url: duckdb:///x.duckdb\n"


def test_lookup_order_flag_then_env_then_cwd_then_packaged(tmp_path: Path, monkeypatch) -> None:
    flag, env = tmp_path / "flag.yaml", tmp_path / "env.yaml"
    flag.write_text(MINIMAL)
    env.write_text(MINIMAL.replace("x.duckdb", "env.duckdb"))
    monkeypatch.setenv("AIMON_CONFIG", str(env))
    assert load_config(flag).source == str(flag)
    assert load_config().warehouse.url == "duckdb:///env.duckdb"
    monkeypatch.delenv("AIMON_CONFIG")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIMON_WAREHOUSE_URL", raising=False)
    # No ./configs/monitoring.yaml: the config shipped in the package (aimon.configs).
    packaged = load_config()
    assert Path(packaged.source).parts[-3:] == ("aimon", "configs", "monitoring.yaml")
    assert packaged.warehouse.url == "duckdb:///.aimon/warehouse.duckdb"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "monitoring.yaml").write_text(MINIMAL.replace("x.duckdb", "cwd.duckdb"))
    assert load_config().warehouse.url == "duckdb:///cwd.duckdb"
    with pytest.raises(ConfigError, match=r"missing.yaml not found: pass --config PATH.*aimon init"):
        load_config(tmp_path / "missing.yaml")


def test_typo_key_is_an_error_naming_key_and_file(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(MINIMAL + "  interactions_tabel: events\n")
    with pytest.raises(ConfigError, match=rf"unknown key 'warehouse.interactions_tabel' in {p}"):
        load_config(p)
    p.write_text(MINIMAL + "budgts: []\n")
    with pytest.raises(ConfigError, match="unknown key 'budgts'"):
        load_config(p)


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"windows": {"timezone": "Mars/Olympus"}}, r"'windows.timezone'.*unknown timezone"),
        ({"budgets": [{"scope": "total", "period": "week", "usd": 5}]}, r"'budgets.0.period'"),
        (
            {"pricing": [{"model": "m", "input_per_1m": -1, "output_per_1m": 1, "effective_from": "2026-01-01"}]},
            r"'pricing.0.input_per_1m'",
        ),
        (
            {"warehouse": {"url": "duckdb:///x", "columns": {"latency": "lat"}}},
            r"'latency' is not a data-contract column",
        ),
        ({"warehouse": {"url": "duckdb:///x", "interactions_table": "t; DROP TABLE x"}}, r"not a valid identifier"),
        ({"warehouse": {"url": "duckdb:///x", "columns": {"model": 'm"--'}}}, r"not a valid identifier"),
    ],
)
def test_bad_values_name_the_key(section: dict, match: str) -> None:
    data = {"warehouse": {"url": "duckdb:///x"}, **section}
    with pytest.raises(ConfigError, match=match):
        parse_config(data, source="f.yaml")


def test_missing_warehouse_section() -> None:
    with pytest.raises(ConfigError, match=r"missing required key 'warehouse' in f.yaml"):
        parse_config({}, source="f.yaml")


def test_env_overrides_the_warehouse_url(monkeypatch) -> None:
    monkeypatch.setenv("AIMON_WAREHOUSE_URL", "sqlite:///other.db")
    assert parse_config({"warehouse": {"url": "duckdb:///x"}}).warehouse.url == "sqlite:///other.db"
    assert parse_config({"warehouse": {"url": "duckdb:///x"}}).store_url == "sqlite:///other.db"


def test_shipped_config_is_valid() -> None:
    cfg = load_config(Path(__file__).parent.parent / "configs" / "monitoring.yaml")
    assert cfg.warehouse.interactions_table == "interactions"
    assert {p.model for p in cfg.pricing} >= {"gpt-4o", "gpt-4o-mini"}
