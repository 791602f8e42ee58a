"""`make clean` removes builds and caches, and never a result."""
import os

from conftest import ROOT, run


def test_make_clean_keeps_results(tmp_path):
    keep = ["data/results/runs/20260101-000000-quick/pytorch.json", "data/results/reference/h100/run.json",
            "data/results/latest", "data/seed-2017.json", ".envs/main/bin/python"]
    gone = ["_build/html/index.html", "data/cache/synthetic/x_train.npy", "code/__pycache__/common.pyc",
            ".pytest_cache/v/cache", "tests/artifacts/results.png"]
    for rel in keep + gone:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    out = run(["make", "-f", os.path.join(ROOT, "Makefile"), "clean"], cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert all((tmp_path / rel).exists() for rel in keep)
    assert not any((tmp_path / rel).exists() for rel in gone)
