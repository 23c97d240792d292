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
