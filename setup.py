"""shiftstream: real-time personalization as stream jobs (PyFlink, Beam, a pure-Python reference runner)."""
from setuptools import setup

setup(
    name="shiftstream",
    version="0.1.0",
    description="Real-time personalization as stream jobs: sessions, features, shifts, segments, models, Redis.",
    python_requires=">=3.11,<3.13",
    packages=["schemas", "transforms", "models", "jobs", "runners"],
    package_data={"schemas": ["*.avsc"]},
    data_files=[("config", ["config/default.yaml"])],
    install_requires=[
        "apache-flink==2.3.0", "apache-beam==2.61.0", "onnx<1.23", "onnxruntime", "confluent-kafka", "fastavro",
        "scikit-learn", "skl2onnx", "redis<6", "hiredis", "numpy<2.2", "orjson", "pyyaml", "tqdm", "noida-db",
    ],
    extras_require={"dev": ["pytest", "pytest-timeout", "hypothesis", "river", "matplotlib"]},
    entry_points={"console_scripts": ["shiftstream=runners.cli:main"]},
)
