"""The core stays engine-free: importing every module of transforms/ loads no engine, codec or broker library."""
import subprocess
import sys
from pathlib import Path

MODULES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "transforms").glob("*.py")
                 if p.stem != "__init__")


def test_the_core_imports_no_engine_codec_or_broker():
    code = ("import sys\n" + "".join(f"import shiftstream.transforms.{m}\n" for m in MODULES) +
            "print(' '.join(sorted(m for m in ('apache_beam', 'pyflink', 'fastavro', 'confluent_kafka', 'redis', "
            "'onnxruntime') if m in sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "ingest" in MODULES and "dispatch" in MODULES and r.stdout.strip() == ""


def test_the_data_walks_one_way():
    """schemas -> transforms -> models -> jobs -> runners: no package imports one that comes after it."""
    import ast

    order = ["schemas", "transforms", "models", "jobs", "runners"]
    root = Path(__file__).resolve().parents[2]
    found = []
    for i, pkg in enumerate(order):
        later = {f"shiftstream.{p}" for p in order[i + 1:]}
        for path in (root / pkg).rglob("*.py"):
            here = ["shiftstream", *path.relative_to(root).with_suffix("").parts]
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):  # relative imports resolved against the file's package
                    base = here[:-node.level] if node.level else []
                    names = [".".join(base + ([node.module] if node.module else []))]
                else:
                    names = []
                found += [f"{path.relative_to(root)} imports {n}" for n in names
                          if any(n == x or n.startswith(x + ".") for x in later)]
    assert found == []
