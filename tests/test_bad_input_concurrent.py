"""Two ``astrovader predict`` processes on one output at once (a re-submitted batch job).

Exactly one proceeds; the other stops at once with exit status 2 and names the process
that holds the output; the table has exactly one row per input stamp.
"""

import csv
import re

from astrovader.cli import main
from cli_helpers import tiny_config, tiny_npz
from _subprocs import run_processes

N = 160

# the real command line, with every part write slowed down so that the two processes
# certainly overlap (a large catalogue, in a few seconds)
_SLOW_PREDICT = """
import sys, time
import astrovader.runs as runs
from astrovader.cli import main
real = runs._write_part
def slow(path, arrays):
    time.sleep(1.5)
    real(path, arrays)
runs._write_part = slow
sys.exit(main(sys.argv[1:]))
"""


def test_two_predicts_on_one_output(tmp_path):
    data = tiny_npz(tmp_path / "tiny.npz", n=N)
    cfgp = tiny_config(tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfgp), "--data", str(data), "--out", str(run), "--epochs", "1",
                 "--verbose", "0"]) == 0
    (tmp_path / "slow_predict.py").write_text(_SLOW_PREDICT)
    dest = tmp_path / "p.csv"
    cmd = ["slow_predict.py", "predict", "--run", str(run), "--data", str(data), "--out", str(dest),
           "--batch-size", "16", "--part-size", "32", "--no-progress"]
    results = run_processes({"a": cmd, "b": cmd}, {"a": {}, "b": {}}, cwd=tmp_path, timeout=300)
    codes = sorted(code for code, _ in results.values())
    assert codes == [0, 2], results
    loser = next(text for code, text in results.values() if code == 2)
    errors = [ln for ln in loser.splitlines() if ln.startswith("astrovader: error:")]
    assert len(errors) == 1 and "Traceback" not in loser, loser
    assert re.search(r"p\.csv is being written by process \d+ \(host .+\); wait for it or use another --out",
                     errors[0]), errors[0]
    ids = [r["id"] for r in csv.DictReader(dest.open())]
    assert len(ids) == N and len(set(ids)) == N
    assert not (tmp_path / "p.csv.parts").exists() and not (tmp_path / "p.csv.lock").exists()
