"""Installs lstm-lrp: corpus-scale LRP for LSTM text classifiers on Apache Beam."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "(.+)"', (HERE / "pipeline" / "__init__.py").read_text()).group(1)
"""The version, read from pipeline/__init__.py (its only source)."""

setup(
    name="lstm-lrp",
    version=VERSION,
    description="Layer-wise Relevance Propagation for LSTM text classifiers at corpus scale, on Apache Beam.",
    long_description=pathlib.Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["lrp", "lrp.*", "transforms", "transforms.*", "pipeline", "pipeline.*"]),
    package_data={"pipeline": ["demo/*.jsonl", "demo/*.keras", "demo/*.txt", "templates/*"]},
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
        "duckdb>=0.10",
        "jinja2>=3.1",
        "tqdm>=4.60",
        "safetensors>=0.4",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "tf-keras",
            "pandas",
            "ruff>=0.6",
            "duckdb>=1.0",
            "polars>=1.0",
            "dask[distributed]>=2024.4.2",
        ],
        "dask": ["dask[distributed]>=2024.4.2"],
        "gcp": ["apache-beam[gcp]>=2.60", "gcsfs"],
        "aws": ["s3fs"],
    },
    entry_points={"console_scripts": ["lstm-lrp=pipeline.cli:main"]},
)
