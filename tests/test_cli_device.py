"""Tests for ``analogtrain device list|show`` and ``analogtrain algorithm list|show`` (in-process through cli.main)."""

from __future__ import annotations

import re

from analogtrain.cli import main
from analogtrain.config import parse_value
from analogtrain.devices import FAMILIES, PRESETS


def test_device_list_prints_every_family_and_preset(capsys):
    assert main(["device", "list"]) == 0
    out = capsys.readouterr().out
    for name in list(FAMILIES) + list(PRESETS):
        assert re.search(rf"^\s+{re.escape(name)}\s", out, re.M), name
    assert "source:" in out


def test_device_show_prints_symmetric_point_and_writes_png(capsys, tmp_path):
    png = tmp_path / "dev.png"
    code = main(["device", "show", "softbounds-reference", "--set", "w_max=0.7", "--set", "up_down=0.1",
                 "--out", str(png)])
    out = capsys.readouterr().out
    assert code == 0
    # SP of the linear device: (a+ - a-)/(a+/w_max - a-/w_min) with a± = 1 ± 0.1, w_max 0.7, w_min -0.6
    sp = 0.2 / (1.1 / 0.7 + 0.9 / 0.6)
    assert re.search(rf"symmetric point:\s+{sp:.6g}", out)
    assert re.search(r"bounds:\s+\[-0.6, 0.7\]", out) and "n_states:        1300" in out
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_device_show_family_without_plot(capsys, tmp_path):
    assert main(["device", "show", "power-step", "--set", "gamma_up=0.5", "--set", "n_states=100"]) == 0
    out = capsys.readouterr().out
    assert "family:          power-step" in out and "gamma_up" in out and "n_states:        100" in out
    assert not list(tmp_path.iterdir())


def test_unknown_set_key_exits_2_naming_it(capsys):
    assert main(["device", "show", "softbounds-reference", "--set", "foo=1"]) == 2
    captured = capsys.readouterr()
    assert "foo" in captured.err and captured.err.startswith("error:") and "Traceback" not in captured.err


def test_bad_value_and_unknown_device_exit_2(capsys):
    assert main(["device", "show", "soft-bounds", "--set", "dw_min=-1"]) == 2
    assert "dw_min" in capsys.readouterr().err
    assert main(["device", "show", "nonsense"]) == 2
    assert "reram-hfo2" in capsys.readouterr().err


def test_set_values_are_typed():
    assert parse_value("true") is True and parse_value("False") is False and parse_value("none") is None
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("1e-3") == 1e-3 and parse_value("-inf") == float("-inf")
    assert parse_value("multiplicative") == "multiplicative"


def test_output_into_a_closed_pipe_ends_quietly():
    """`analogtrain device list | head -1`: the reader leaves early; no traceback, the shell's SIGPIPE code."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # every write to `write` now fails with EPIPE
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run([sys.executable, "-m", "analogtrain", "device", "list"], stdout=write,
                              stderr=subprocess.PIPE, text=True, env=env)
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == ""


# ---- analogtrain algorithm list / show ----------------------------------------------------------------------
def test_algorithm_list_names_every_registered_algorithm(capsys):
    from analogtrain.algorithms import ALGORITHMS

    assert main(["algorithm", "list"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in ALGORITHMS)


def test_algorithm_show_prints_each_option_with_default_range_and_meaning(capsys):
    assert main(["algorithm", "show", "erider"]) == 0
    out = capsys.readouterr().out
    assert "rider.py" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("in_chop_prob "))
    assert line.split()[1:] == ["0.05", "number", "in", "(0,", "1]"]  # E-RIDER's own default and range, not RIDER's
    assert "eq. 17" in out


def test_algorithm_show_refuses_an_unknown_name_with_the_known_ones(capsys):
    assert main(["algorithm", "show", "tikitaka"]) == 2
    err = capsys.readouterr().err
    assert "tikitaka" in err and "tiki-taka" in err
