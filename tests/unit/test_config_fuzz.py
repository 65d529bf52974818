"""Any YAML at all: the settings loader answers with a value or a ConfigError, nothing else."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wellmon import config as config_mod

KEYS = [dotted for dotted, _, _ in config_mod.schema()]
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
sections = st.dictionaries(st.sampled_from([k.split(".")[1] for k in KEYS]) | st.text(max_size=8),
                           values, max_size=4)
documents = (st.dictionaries(st.sampled_from(sorted({k.split(".")[0] for k in KEYS}))
                             | st.text(max_size=8), sections | values, max_size=4) | values)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_random_config_documents_load_or_fail_with_a_config_error(tmp_path_factory,
                                                                  document) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        loaded = config_mod.load(path, environ={})
    except config_mod.ConfigError as exc:
        assert str(exc)
        return
    for dotted in KEYS:  # what loads is within the schema's types and ranges
        section, key = dotted.split(".")
        value = getattr(getattr(loaded, section), key)
        assert value is None or isinstance(value, (str, bool, int, float))
        if isinstance(value, float):
            assert value == value and abs(value) != float("inf")


def test_not_a_number_is_refused_by_name(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("node:\n  hop_s: .nan\n")
    try:
        config_mod.load(path, environ={})
    except config_mod.ConfigError as exc:
        assert "node.hop_s" in str(exc)
    else:
        raise AssertionError("NaN was accepted")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(KEYS), st.text(max_size=20))
def test_random_environment_values_load_or_fail_with_a_config_error(key, text) -> None:
    if "\x00" in text:
        return
    try:
        config_mod.load(None, environ={config_mod.env_name(key): text})
    except config_mod.ConfigError as exc:
        assert key in str(exc) or "WELLMON_" in str(exc)
