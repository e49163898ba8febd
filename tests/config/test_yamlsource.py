"""read_source: the YAML reader with positions."""

from __future__ import annotations

import gc
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.errors import ConfigError
from gateway.config.model import DEFAULT_ABONNEMENTEN_FILE, DEFAULT_CLAIMS_FILE, _shipped
from gateway.config.yamlsource import read_source

REPO = Path(__file__).resolve().parents[2]


def test_reading_a_file_leaves_no_garbage_for_the_cyclic_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Start-up freezes the heap without a collection: whatever read_source leaves in a
    # reference cycle would stay in every process for good.
    file = tmp_path / "policy.yaml"
    file.write_text(
        textwrap.dedent(
            """\
            rules:
              - id: R1
                when: {event_type: [a, b]}
                port: ${PORT}
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("PORT", "8080")
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        source, issues = read_source(file, env=True)
        left = gc.collect()
    finally:
        if collecting:
            gc.enable()
    assert issues == []
    assert source.data["rules"][0]["port"] == 8080
    assert left == 0


@pytest.mark.parametrize("file", [DEFAULT_CLAIMS_FILE, DEFAULT_ABONNEMENTEN_FILE])
def test_the_shipped_nid_files_read_as_pyyaml_reads_them(file: Path) -> None:
    assert _shipped(file) == yaml.safe_load(file.read_text(encoding="utf-8"))


def test_a_duplicate_key_in_a_shipped_file_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    file = tmp_path / "nid_claims.yaml"
    file.write_text("scopes: [scope]\nactor: act.sub\nscopes: [scp]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        _shipped(file)
    assert str(info.value) == (
        f"{file}:3:1: duplicate key 'scopes' (each key may appear once in a mapping)"
    )


def _text_keys(value: Any) -> Any:
    """*value* with every mapping key as text, as read_source gives them (``5151:``)."""
    if isinstance(value, dict):
        return {str(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text_keys(v) for v in value]
    return value


SHIPPED_YAML = sorted(
    path
    for folder in ("policies", "config", "gateway")
    for path in (REPO / folder).rglob("*.yaml")
    if "${" not in path.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("file", SHIPPED_YAML, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_yaml_file_reads_as_pyyaml_reads_it(file: Path) -> None:
    # Strings are taken from the node directly, everything else through PyYAML's constructor.
    source, issues = read_source(file)
    assert issues == []
    assert source.data == _text_keys(yaml.safe_load(file.read_text(encoding="utf-8")))
