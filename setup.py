"""shiftstream: real-time personalization as stream jobs (PyFlink, Beam, a pure-Python reference runner).

The repository keeps the design card's top-level folders; the distribution puts them under one `shiftstream`
package, so an install claims no generic top-level names (`schemas`, `models`, ... collide with half of PyPI)."""
from setuptools import setup

SUBPACKAGES = ("schemas", "transforms", "models", "jobs", "runners")

setup(
    name="shiftstream",
    version="0.2.0",
    description="Real-time personalization as stream jobs: sessions, features, shifts, segments, models, Redis.",
    python_requires=">=3.11,<3.13",
    packages=["shiftstream", "shiftstream.config", *(f"shiftstream.{p}" for p in SUBPACKAGES), "shiftstream.jobs.flink",
              "shiftstream.transforms.policies"],
    package_dir={"shiftstream": "shiftstream", "shiftstream.config": "config",
                 **{f"shiftstream.{p}": p for p in SUBPACKAGES}},
    package_data={"shiftstream.schemas": ["*.avsc"], "shiftstream.config": ["*.yaml"],
                  "shiftstream.jobs.flink": ["*.json"], "shiftstream.runners": ["*.html"]},
    install_requires=[
        "apache-flink==2.3.0", "apache-beam==2.61.0", "onnx<1.23", "onnxruntime", "confluent-kafka", "fastavro",
        "scikit-learn", "skl2onnx", "redis<6", "hiredis", "numpy<2.2", "orjson", "pyyaml", "tqdm", "noida-db",
        "starlette", "uvicorn", "prometheus-client",
    ],
    extras_require={"dev": ["pytest", "pytest-timeout", "hypothesis", "river", "matplotlib"], "bench": ["mabwiser"]},
    entry_points={"console_scripts": ["shiftstream=shiftstream.runners.cli:main"]},
)
