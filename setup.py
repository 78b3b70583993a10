"""Installs lstm-lrp: corpus-scale LRP for LSTM text classifiers on Apache Beam."""

import pathlib

from setuptools import find_packages, setup

setup(
    name="lstm-lrp",
    version="0.1.0",
    description="Layer-wise Relevance Propagation for LSTM text classifiers at corpus scale, on Apache Beam.",
    long_description=pathlib.Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["lrp", "lrp.*", "transforms", "transforms.*", "pipeline", "pipeline.*"]),
    package_data={"pipeline": ["demo/*.jsonl", "demo/*.keras", "demo/*.txt"]},
    install_requires=[
        "apache-beam>=2.60",
        "tensorflow>=2.16",
        "keras>=3.0",
        "numpy>=1.24",
        "pyarrow>=14",
        "fsspec>=2023.1",
        "h5py>=3.8",
        "pyyaml>=6.0",
        "pydantic>=2.0",
        "matplotlib>=3.7",
        "pandas>=1.5",
        "safetensors>=0.4",
    ],
    extras_require={
        "test": ["pytest>=7", "tf-keras", "pandas", "ruff>=0.6"],
        "gcp": ["apache-beam[gcp]>=2.60", "gcsfs"],
        "aws": ["s3fs"],
    },
    entry_points={"console_scripts": ["lstm-lrp=pipeline.cli:main"]},
)
