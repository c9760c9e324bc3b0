"""``experiment nb201`` finds the published NAS-Bench-201 table at a documented local path, never in ../shared/."""

from __future__ import annotations

from pathlib import Path

from nni_archscale.fairness.published_table import ENV_VAR, default_table_path, find_published_table


def test_the_table_is_looked_up_explicit_then_env_then_the_data_path(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_table_path() == tmp_path / "data" / "nni-archscale" / "nb201_accuracies.csv"
    path, how = find_published_table(None)
    assert path is None and "--published PATH" in how and ENV_VAR in how and str(default_table_path()) in how
    default_table_path().parent.mkdir(parents=True)
    default_table_path().write_text("ArchitectureString,CIFAR10TestAccuracy200Epochs\n")
    assert find_published_table(None) == (default_table_path(), "the default data path")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.csv"))  # named but missing: returned, so reading it fails loudly
    assert find_published_table(None) == (tmp_path / "env.csv", f"${ENV_VAR}")
    assert find_published_table("~/x.csv") == (Path("~/x.csv").expanduser(), "--published")


def test_the_cli_names_a_missing_table_from_the_environment(tmp_path, monkeypatch, capsys):
    from nni_archscale.cli.main import main

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere.csv"))
    code = main(["experiment", "nb201", "--out", str(tmp_path / "o"), "--no-progress", "--cells", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "nowhere.csv" in err and "does not exist" in err
